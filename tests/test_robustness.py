"""Robustness and calibration (issue 27): level-invariant reference
networks, the recording shifts scored at test time, temperature scaling."""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras.src import testing

import keras_speechmix as ksm
from keras_speechmix import calibration, models
from keras_speechmix.audio.clipping import RandomClipping
from keras_speechmix.audio.level import LevelNormalization
from keras_speechmix.audio.shifts import SHIFTS, apply_shift, parse_shift
from keras_speechmix.training import experiment
from keras_speechmix.training.paired import compare_shifts, shift_lines

RNG = np.random.default_rng(0)


def _speechlike(n=8000, seed=0):
    """A decaying tone burst with a little noise: sound with a level to move."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000.0
    wave = np.sin(2 * np.pi * (300 + 200 * rng.random()) * t) * np.exp(-3 * t)
    return (0.3 * wave + 0.01 * rng.standard_normal(n)).astype("float32")


class LevelNormalizationTest(testing.TestCase):
    def test_layer(self):
        self.run_layer_test(
            LevelNormalization,
            init_kwargs={"target_db": -20.0, "floor_db": -80.0},
            input_shape=(3, 400),
            expected_output_shape=(3, 400),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            run_training_check=False,
        )

    def test_any_gain_gives_the_same_output_at_the_target_level(self):
        wave = _speechlike()[None]
        layer = LevelNormalization(target_db=-20.0)
        reference = np.asarray(layer(wave))
        self.assertAllClose(np.sqrt(np.mean(reference ** 2)), 0.1, atol=1e-5)
        for gain_db in (-40, -20, -3, 6):
            self.assertAllClose(layer(wave * 10 ** (gain_db / 20)), reference, atol=1e-5)

    def test_each_clip_is_scaled_on_its_own(self):
        quiet, loud = _speechlike(seed=1) * 0.01, _speechlike(seed=2)
        out = np.asarray(LevelNormalization()(np.stack([quiet, loud])))
        rms = np.sqrt(np.mean(out ** 2, axis=1))
        self.assertAllClose(rms, [0.1, 0.1], atol=1e-5)

    def test_silence_stays_silent_and_near_silence_is_not_blown_up(self):
        silent = np.zeros((1, 800), "float32")
        self.assertAllEqual(LevelNormalization()(silent), silent)
        # -100 dBFS: raised by the floor's gain (60 dB) only, to -40 dBFS.
        whisper = (1e-5 * np.sign(np.sin(np.arange(800)))).astype("float32")[None]
        rms = float(np.sqrt(np.mean(np.asarray(LevelNormalization()(whisper)) ** 2)))
        self.assertAllClose(20 * np.log10(rms), -40.0, atol=0.5)

    def test_bad_levels_are_refused(self):
        with pytest.raises(ValueError, match="target_db must be <= 0"):
            LevelNormalization(target_db=3.0)
        with pytest.raises(ValueError, match="floor_db must be below target_db"):
            LevelNormalization(target_db=-20.0, floor_db=-10.0)


@pytest.mark.parametrize("build", [
    lambda: models.logmel_cnn(3, sample_rate=8000, input_length=8000),
    lambda: models.piczak_cnn(3, sample_rate=8000, input_length=8000),
    lambda: models.envnet_v2(3, input_length=24000),
], ids=["logmel_cnn", "piczak_cnn", "envnet_v2"])
def test_reference_networks_answer_the_same_at_any_level(build):
    """The trained recipe's networks: a quieter or louder clip (unclipped)
    gets the same probabilities; `level_norm=False` keeps the old behaviour."""
    model = build()
    assert model.get_layer("level").__class__ is LevelNormalization
    length = model.input_shape[1]
    waves = np.stack([np.resize(_speechlike(seed=k), length) for k in range(3)])
    # Weights a long way from their start, so the network is not flat in level.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(RNG.normal(size=layer.moving_mean.shape))
    reference = model.predict(waves, verbose=0)
    for gain_db in (-20.0, -10.0, 3.0):
        shifted = model.predict(waves * 10 ** (gain_db / 20), verbose=0)
        np.testing.assert_allclose(shifted, reference, atol=1e-4)


def test_without_level_norm_the_network_depends_on_the_level():
    """The check above can fail: the same network without the layer moves."""
    model = models.logmel_cnn(3, sample_rate=8000, input_length=8000, level_norm=False)
    assert "level" not in [layer.name for layer in model.layers]
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(RNG.normal(size=layer.moving_mean.shape))
    # Read where the level enters: the normalised log-mel features. An
    # untrained head squashes differences, so its outputs prove little.
    features = keras.Model(model.input, model.get_layer("input_norm").output)
    waves = np.stack([_speechlike(seed=k) for k in range(3)])
    moved = np.abs(features.predict(waves * 0.1, verbose=0)
                   - features.predict(waves, verbose=0)).mean()
    assert moved > 1.0  # log(0.1 ** 2) = -4.6 per cell before the batch norm's scale
    invariant = models.logmel_cnn(3, sample_rate=8000, input_length=8000)
    features = keras.Model(invariant.input, invariant.get_layer("input_norm").output)
    assert np.abs(features.predict(waves * 0.1, verbose=0)
                  - features.predict(waves, verbose=0)).max() < 1e-3


def test_level_normalisation_comes_after_the_waveform_mixing_point():
    """BC learning's rule weighs clips by their own gains: the waveform
    point must see them before the level is normalised."""
    model = models.logmel_cnn(3, sample_rate=8000, input_length=8000,
                              mix_points=("waveform", "block1"))
    names = [layer.name for layer in model.layers]
    assert names.index("mix_waveform") < names.index("level") < names.index("logmel")


def test_the_recipe_builds_level_invariant_networks():
    assert experiment.RECIPE["level_norm"] is True
    model = experiment.build_model("bc", 10, 16000, 16000)
    assert isinstance(model.get_layer("level"), LevelNormalization)


class RandomClippingTest(testing.TestCase):
    def test_layer(self):
        self.run_layer_test(
            RandomClipping,
            init_kwargs={"max_gain_db": 10.0, "rate": 0.5, "seed": 1},
            input_shape=(3, 400),
            expected_output_shape=(3, 400),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            run_training_check=False,
        )

    def test_inference_is_the_identity(self):
        wave = 3.0 * _speechlike()[None]  # even beyond full scale
        self.assertAllEqual(RandomClipping(rate=1.0)(wave), wave)

    def test_training_makes_chosen_clips_louder_and_clips_them(self):
        waves = np.stack([0.5 * _speechlike(seed=k) / np.abs(_speechlike(seed=k)).max()
                          for k in range(200)])
        out = np.asarray(RandomClipping(max_gain_db=10.0, rate=0.5, seed=3)(
            waves, training=True))
        assert np.abs(out).max() <= 1.0
        changed = ~np.all(out == waves, axis=1)
        # About half the clips, each by one gain: the unclipped samples scale
        # by a factor between 1 and 10 dB.
        assert 70 < changed.sum() < 130
        for row in np.flatnonzero(changed):
            inside = np.abs(out[row]) < 1.0
            gain = np.median(out[row][inside] / waves[row][inside])
            assert 1.0 <= gain <= 10 ** 0.5 + 1e-5
            np.testing.assert_allclose(out[row][inside], gain * waves[row][inside], rtol=1e-5)
        assert np.any(np.abs(out[changed]) == 1.0)  # some peaks clipped

    def test_runs_in_a_tf_data_pipeline(self):
        import tensorflow as tf

        layer = RandomClipping(rate=1.0, seed=0)
        ds = tf.data.Dataset.from_tensor_slices(np.stack([_speechlike(seed=k)
                                                          for k in range(4)]))
        for batch in ds.batch(2).map(lambda x: layer(x, training=True)):
            self.assertEqual(tuple(batch.shape), (2, len(_speechlike())))
            assert float(tf.reduce_max(tf.abs(batch))) <= 1.0

    def test_bad_arguments_are_refused_by_name(self):
        for kwargs, name in (({"max_gain_db": 0}, "max_gain_db"),
                             ({"max_gain_db": "10"}, "max_gain_db"),
                             ({"rate": 1.5}, "rate"), ({"rate": True}, "rate")):
            with pytest.raises(ValueError, match=f"`{name}`"):
                RandomClipping(**kwargs)


def test_random_clipping_sits_between_the_waveform_point_and_the_level():
    model = models.logmel_cnn(3, sample_rate=8000, input_length=8000,
                              mix_points=("waveform", "block1"), random_clipping=10.0)
    names = [layer.name for layer in model.layers]
    assert (names.index("mix_waveform") < names.index("random_clipping")
            < names.index("level") < names.index("logmel"))
    assert model.get_layer("random_clipping").max_gain_db == 10.0
    assert "random_clipping" not in [
        layer.name for layer in models.logmel_cnn(3, sample_rate=8000, input_length=8000).layers]


def test_a_model_with_random_clipping_saves_and_predicts_unchanged(tmp_path):
    model = models.piczak_cnn(3, sample_rate=8000, input_length=8000, random_clipping=6.0)
    waves = np.stack([np.resize(_speechlike(seed=k), 8000) for k in range(2)])
    ksm.save_model(model, tmp_path / "model.keras", sample_rate=8000,
                   class_names=["a", "b", "c"])
    loaded = ksm.load_model(tmp_path / "model.keras")
    assert loaded.get_layer("random_clipping").get_config()["max_gain_db"] == 6.0
    np.testing.assert_allclose(loaded.predict(waves, verbose=0),
                               model.predict(waves, verbose=0), atol=1e-6)


# -- shifts -------------------------------------------------------------------


def test_every_default_shift_parses_and_keeps_the_clips_shapes():
    waves = [_speechlike(4000, seed=k) for k in range(4)]
    for shift in SHIFTS:
        shifted = apply_shift(waves, shift, seed=1, labels=[0, 1, 2, 3])
        assert [w.shape for w in shifted] == [w.shape for w in waves], shift
        assert all(w.dtype == np.float32 and np.isfinite(w).all() for w in shifted), shift


@pytest.mark.parametrize("kind", ["white", "pink", "background"])
@pytest.mark.parametrize("snr", [20.0, 5.0])
def test_noise_is_added_at_the_asked_snr(kind, snr):
    waves = [_speechlike(8000, seed=k) for k in range(3)]
    shifted = apply_shift(waves, f"{kind}:{snr:g}", seed=3, labels=[0, 1, 2])
    for clean, noisy in zip(waves, shifted):
        noise = noisy.astype(np.float64) - clean
        measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2))
        assert measured == pytest.approx(snr, abs=0.05)


def test_pink_noise_has_more_power_at_low_frequencies():
    noisy = apply_shift([np.full(16000, 0.1, "float32")], "pink:0", seed=0)[0] - 0.1
    spectrum = np.abs(np.fft.rfft(noisy)) ** 2
    assert spectrum[10:100].mean() > 20 * spectrum[4000:6000].mean()


def test_background_comes_from_another_class():
    waves = [np.full(100, 0.5, "float32"), np.full(100, 0.1, "float32"),
             np.sin(np.arange(100)).astype("float32")]
    # Clip 0's only other-class clip is clip 2 (clip 1 shares its label).
    noisy = apply_shift(waves, "background:0", seed=0, labels=[0, 0, 1])[0]
    noise = noisy - waves[0]
    assert np.corrcoef(noise, np.roll(waves[2], -int(np.argmax(np.correlate(
        np.tile(waves[2], 2), noise)))))[0, 1] > 0.99
    with pytest.raises(ValueError, match="another non-silent clip"):
        apply_shift(waves[:2], "background:10", labels=[0, 0])


def test_shifts_are_seeded_per_clip():
    waves = [_speechlike(seed=k) for k in range(3)]
    first = apply_shift(waves, "white:10", seed=5)
    again = apply_shift(waves[:2], "white:10", seed=5)
    np.testing.assert_array_equal(first[1], again[1])  # the same draw for clip 1
    other = apply_shift(waves, "white:10", seed=6)
    assert not np.array_equal(first[0], other[0])


def test_louder_clips_are_clipped_at_full_scale():
    wave = np.array([0.05, -0.2, 0.5, -0.9], "float32")
    assert apply_shift([wave], "level:+10")[0].tolist() == pytest.approx(
        [0.158114, -0.632456, 1.0, -1.0], abs=1e-5)


@pytest.mark.parametrize("bad", ["level", "loud:10", "white:x", "clean:3", "level:+50", ""])
def test_bad_shift_names_get_a_clear_error(bad):
    with pytest.raises(ValueError, match="shift"):
        parse_shift(bad)


# -- calibration ---------------------------------------------------------------


def test_expected_calibration_error_and_nll_by_hand():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 1, 1, 0])
    # Bins: 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (right).
    assert ksm.expected_calibration_error(p, labels) == pytest.approx(
        (0.1 + 0.8 + 0.3 + 0.4) / 4)
    assert ksm.negative_log_likelihood(p, labels) == pytest.approx(
        -np.mean(np.log([0.9, 0.2, 0.7, 0.6])))
    with pytest.raises(ValueError, match="one label per clip"):
        ksm.expected_calibration_error(p, labels[:3])


def test_fit_temperature_recovers_the_temperature_that_made_the_data():
    """Labels drawn from softmax(z); the model reports softmax(z * 3): far
    too confident. The fitted temperature undoes the 3."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 5))
    true = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in true])
    sharp = np.exp(3 * z) / np.exp(3 * z).sum(axis=1, keepdims=True)
    temperature = ksm.fit_temperature(sharp, labels)
    assert temperature == pytest.approx(3.0, rel=0.08)
    before = ksm.expected_calibration_error(sharp, labels)
    after = ksm.expected_calibration_error(
        np.asarray(calibration.TemperatureScaling(temperature)(sharp.astype("float32"))), labels)
    assert after < 0.03 < before


def test_fit_temperature_with_windows_averages_them_per_clip():
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    owner = np.array([0, 0, 1, 1])
    t = ksm.fit_temperature(p, np.array([0, 0]), owner=owner)
    assert 0.05 <= t <= 20
    with pytest.raises(ValueError, match="owner"):
        ksm.fit_temperature(p, np.array([0, 0]), owner=owner[:3])


def test_fit_temperature_prior_keeps_a_small_all_right_hold_out_off_the_floor():
    """Eight held-out clips, every one right: the likelihood alone keeps
    rising as T falls, to the grid's floor (the model would then be certain
    of its mistakes); the prior on log T stops it, sharpening only a little."""
    right = np.array([[0.7, 0.3], [0.3, 0.7]] * 4)
    labels = np.array([0, 1] * 4)
    assert ksm.fit_temperature(right, labels, prior_sigma=None) == pytest.approx(0.05, rel=0.01)
    with_prior = ksm.fit_temperature(right, labels)
    assert 0.2 < with_prior < 1.0
    # A tighter prior pulls it closer to 1.
    assert with_prior < ksm.fit_temperature(right, labels, prior_sigma=0.25) < 1.0


def test_fit_temperature_prior_weighs_as_one_observation():
    """With thousands of clips the prior hardly moves the fit; with a few it
    pulls towards 1."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(3000, 4))
    true = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in true])
    sharp = np.exp(2 * z) / np.exp(2 * z).sum(axis=1, keepdims=True)
    mle = ksm.fit_temperature(sharp, labels, prior_sigma=None)
    assert ksm.fit_temperature(sharp, labels) == pytest.approx(mle, rel=0.01)
    few = slice(0, 12)
    mle_few = ksm.fit_temperature(sharp[few], labels[few], prior_sigma=None)
    map_few = ksm.fit_temperature(sharp[few], labels[few])
    assert abs(np.log(map_few)) < abs(np.log(mle_few))


@pytest.mark.parametrize("sigma", [0, -1.0, float("nan"), "1.0", True])
def test_fit_temperature_rejects_a_bad_prior(sigma):
    with pytest.raises(ValueError, match="prior_sigma"):
        ksm.fit_temperature(np.array([[0.6, 0.4]]), [0], prior_sigma=sigma)


def test_temperature_keeps_every_prediction_and_saves_with_the_model(tmp_path):
    model = models.logmel_cnn(3, sample_rate=8000, input_length=4000)
    waves = np.stack([np.resize(_speechlike(seed=k), 4000) for k in range(4)])
    calibrated = ksm.with_temperature(model, 0.5)
    plain, sharp = model.predict(waves, verbose=0), calibrated.predict(waves, verbose=0)
    assert (plain.argmax(1) == sharp.argmax(1)).all()
    assert (sharp.max(1) >= plain.max(1) - 1e-6).all()
    np.testing.assert_allclose(sharp.sum(1), 1.0, atol=1e-5)
    path = tmp_path / "model.keras"
    calibrated.save(path)
    loaded = ksm.load_model(path)
    assert loaded.layers[-1].temperature == 0.5
    np.testing.assert_allclose(loaded.predict(waves, verbose=0), sharp, atol=1e-6)
    # Off again, or replaced: never two temperatures stacked.
    off = ksm.with_temperature(loaded, None)
    np.testing.assert_allclose(off.predict(waves, verbose=0), plain, atol=1e-5)
    twice = ksm.with_temperature(calibrated, 2.0)
    assert sum(isinstance(layer, calibration.TemperatureScaling) for layer in twice.layers) == 1


def test_temperature_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        calibration.TemperatureScaling(0.0)


# -- the recipe's scores and the paired shift table ----------------------------


def test_train_clips_calibrates_on_validation_and_scores_the_shifts():
    """One run of the recipe's path: a temperature from the validation
    clips, ECE and NLL of the test clips, and every default shift scored
    clip by clip."""
    from keras_speechmix.audio.datasets import ClipSet

    waves = [np.resize(_speechlike(seed=k), 4000) * (0.2 + k % 3) for k in range(24)]
    clips = ClipSet(waves, [k % 2 for k in range(24)], ["a", "b"], 8000)
    train, validation, test = clips.subset(np.arange(12)), clips.subset(
        np.arange(12, 18)), clips.subset(np.arange(18, 24))
    model, result = experiment.train_clips(train, test, validation=validation, mix="none",
                                           epochs=1, seed=0, verbose=0, crops=2)
    assert result["temperature"] == model.layers[-1].temperature != 1.0
    assert 0 <= result["test_ece"] <= 1 and result["test_nll"] > 0
    assert "test_ece_uncalibrated" in result
    # Each clip's top probability is kept: with `correct`, it gives the
    # same ECE again, so benchmarks can pool clips over runs.
    confidence = np.asarray(result["test_confidence"])
    assert confidence.shape == (len(test),) and np.all((confidence > 0) & (confidence <= 1))
    assert calibration._top_label_ece(confidence, result["shifts"]["clean"]["correct"]) == (
        pytest.approx(result["test_ece"], abs=1e-4))
    assert list(result["shifts"]) == list(SHIFTS)
    for shift, score in result["shifts"].items():
        assert len(score["correct"]) == len(test), shift
        assert score["error"] == pytest.approx(1 - np.mean(score["correct"]))
    # The level-invariant network: the same clips 10 or 20 dB quieter score the same.
    assert result["shifts"]["level:-20"]["correct"] == result["shifts"]["clean"]["correct"]
    _, bare = experiment.train_clips(train, test, validation=validation, mix="none",
                                     epochs=1, seed=0, verbose=0, crops=2,
                                     calibrate=False, shifts=())
    assert bare["temperature"] == 1.0 and "shifts" not in bare


def test_compare_shifts_pairs_methods_clip_by_clip_and_prints_the_verdict():
    def run(mix, seed, fold, correct):
        return {"mix": mix, "seed": seed, "fold": fold, "shifts": {
            "clean": {"error": 0.0, "ece": 0.0, "correct": [1] * 10},
            "white:10": {"error": 1 - np.mean(correct), "ece": 0.1, "correct": correct}}}

    runs = [run("none", s, f, [0] * 8 + [1] * 2) for s in (0, 1) for f in ("a", "b")]
    runs += [run("speechmix", s, f, [1] * 10) for s in (0, 1) for f in ("a", "b")]
    table = compare_shifts(runs, ["none", "speechmix"])
    row = table["white:10"]["speechmix"]
    assert row["error_mean"] == 0.0 and table["white:10"]["none"]["error_mean"] == 0.8
    assert (row["mcnemar"]["a_only"], row["mcnemar"]["b_only"]) == (32, 0)
    assert row["mcnemar"]["p"] < 1e-6 and row["ratio"] == 0.0
    lines = shift_lines(table, ["none", "speechmix"])
    assert "resolved" in lines[2] and "not resolved" not in lines[2]
    assert "not resolved" in lines[1]  # clean: no discordant clip


# -- the command line -------------------------------------------------------------


def test_train_reports_calibration_and_evaluate_scores_shifts(tmp_path, monkeypatch, capsys):
    """What a user sees: `train` prints ECE and the shifted errors and keeps
    the temperature in model.keras; `evaluate --shift` scores the same
    model under shifts, pairs each with the clean clips and draws them."""
    import json

    from keras_speechmix.audio import synth
    from keras_speechmix.cli import main

    monkeypatch.setenv("KERAS_SPEECHMIX_CACHE", str(tmp_path / "cache"))
    folder = synth.synthesize_digits(num_speakers=2, takes_per_speaker=2)
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--mix", "none", "--epochs", "2",
                 "--out", str(out), "--quiet", "--clip-seconds", "1.0"]) == 0
    printed = capsys.readouterr().out
    assert "calibration: ECE " in printed and "fitted on the validation clips" in printed
    assert "test error under recording shifts" in printed and "level:-20 " in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["temperature"] != 1.0 and list(metrics["shifts"]) == list(SHIFTS)
    model = ksm.load_model(out / "model.keras")
    assert model.layers[-1].temperature == pytest.approx(metrics["temperature"])

    picture = tmp_path / "robustness.png"
    assert main(["evaluate", str(out / "model.keras"), "--data", str(folder),
                 "--shift", "level:-20", "white:10", "--picture", str(picture)]) == 0
    printed = capsys.readouterr().out
    assert "Calibration: ECE " in printed and "the model's temperature" in printed
    rows = {line.split()[0]: line for line in printed.splitlines()
            if line.split() and line.split()[0] in ("clean", "level:-20", "white:10")}
    assert set(rows) == {"clean", "level:-20", "white:10"}
    assert "0:0 p=1.000 not resolved" in rows["level:-20"]  # a level-invariant network
    assert picture.read_bytes().startswith(b"\x89PNG") and picture.stat().st_size > 5000
    assert main(["evaluate", str(out / "model.keras"), "--data", str(folder), "--json",
                 "--shift", "all", "--picture", str(picture)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(result["shifts"]) == list(SHIFTS)
    assert result["shifts"]["white:5"]["against_clean"]["p"] <= 1.0
    # --no-temperature: the network's own probabilities, the same answers.
    assert main(["evaluate", str(out / "model.keras"), "--data", str(folder), "--json",
                 "--no-temperature"]) == 0
    raw = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert raw["temperature"] == 1.0 and raw["confusion"] == result["confusion"]
    assert raw["nll"] != pytest.approx(result["nll"])
    assert main(["predict", str(out / "model.keras"), str(next(folder.rglob("*.wav"))),
                 "--json", "--top", "3", "--no-temperature"]) == 0
    uncalibrated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["predict", str(out / "model.keras"), str(next(folder.rglob("*.wav"))),
                 "--json", "--top", "3"]) == 0
    calibrated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert uncalibrated != calibrated


def test_evaluate_refuses_an_unknown_shift_before_loading(tmp_path, capsys):
    from keras_speechmix.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["evaluate", str(tmp_path / "none.keras"), "--data", str(tmp_path),
              "--shift", "loud:3"])
    assert stop.value.code == 2
    assert "--shift: unknown shift 'loud:3'" in capsys.readouterr().err


def test_pooled_ece_sees_the_sampling_floor_of_a_calibrated_model():
    """benchmarks/common.pooled_ece: clips pooled over runs; a model right
    exactly as often as it says has an ECE near the floor it reports, and
    one right less often sits far above it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import common

    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.3, 1.0, size=(5, 200))
    calibrated = [{"test_confidence": c.tolist(), "correct": (rng.random(200) < c).astype(int)}
                  for c in confidence]
    pooled = common.pooled_ece(calibrated + [{"correct": [1]}])  # one run without confidences
    assert pooled["clips"] == 1000 and pooled["runs"] == 5
    assert pooled["ece"] < 2 * pooled["calibrated_floor"] < 0.1
    over = [{"test_confidence": c.tolist(), "correct": (rng.random(200) < 0.6 * c).astype(int)}
            for c in confidence]
    assert common.pooled_ece(over)["ece"] > 0.2
    assert common.pooled_ece([{"correct": [1, 0]}]) is None
