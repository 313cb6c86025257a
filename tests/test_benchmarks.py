"""The benchmark scripts run end to end (--tiny) and write complete JSON."""

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


def run_script(name, *args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, str(BENCH / name), "--tiny", *args],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def bench_module(name):
    """Imports the benchmark script `name` (benchmarks/ is not a package)."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


def finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_accuracy(payload, expect_data):
    assert {"config", "device", "runs", "summary", "num_runs"} <= set(payload)
    config = payload["config"]
    assert config["mode"] == "tiny" and config["seeds"] == [0, 1]
    assert set(config["methods"]) == {"none", "input", "bc", "manifold", "speechmix"}
    assert config["methods"]["manifold"]["alpha"] == 2.0
    assert config["methods"]["manifold"]["per_sample"] is False
    assert config["methods"]["speechmix"]["partners"] == "different_class"
    assert config["recipe"]["model"] in config["recipe"].values()
    suite = config["suites"][0]
    assert suite["data"] == expect_data
    runs = payload["runs"]
    assert len(runs) == payload["num_runs"] == 2 * len(suite["methods"])
    for run in runs:
        for key in ("test_accuracy", "test_error", "train_accuracy", "seconds"):
            assert finite(run[key]), (key, run)
        assert 0.0 <= run["test_accuracy"] <= 1.0
        assert run["num_test"] > 0 and run["seed"] in (0, 1) and run["epochs"] == 1
        assert bool(run["mix_points"]) == (run["method"] != "none")
    summary = payload["summary"][suite["name"]]
    assert set(summary["methods"]) == set(suite["methods"])
    for method, info in summary["methods"].items():
        assert info["num_seeds"] == 2
        assert finite(info["error_mean"]) and finite(info["error_se"])
        if method != "none":
            assert "relative_error_reduction" in info
            assert set(info["paired_difference_per_seed"]) == {"0", "1"}  # JSON keys
            test = info["mcnemar"]
            # Every clip of both seeds is paired; discordant counts are clips.
            assert test["clips"] == sum(r["num_test"] for r in runs if r["method"] == method)
            assert 0 <= test["a_only"] + test["b_only"] <= test["clips"]
            assert 0.0 < test["p"] <= 1.0
    for run in runs:
        assert len(run["correct"]) == run["num_test"] and sum(run["correct"]) == run["test_correct"]
    assert set(summary["target"]) == {"speechmix <= 0.8 x none",
                                      "resolved by McNemar (p < 0.05)",
                                      "speechmix no worse than bc"}


def test_accuracy_tiny_on_shared_data(tmp_path, shared_data):
    out = tmp_path / "accuracy.json"
    stdout = run_script("accuracy.py", "--out", str(out),
                        "--data-root", str(shared_data))
    assert "speechmix" in stdout and "error % (mean ± se)" in stdout and "target:" in stdout
    assert "paired test vs none" in stdout and "McNemar p" in stdout
    check_accuracy(json.loads(out.read_text()), "fsdd")


def test_accuracy_tiny_falls_back_to_synthesised_digits(tmp_path):
    pytest.importorskip("espeakng_loader")
    out = tmp_path / "accuracy.json"
    run_script("accuracy.py", "--out", str(out),
               "--data-root", str(tmp_path / "no-such-data"))
    payload = json.loads(out.read_text())
    check_accuracy(payload, "synth-tiny")
    assert payload["runs"][0]["sample_rate"] == 16000


def test_mcnemar_exact_values():
    sys.path.insert(0, str(BENCH))
    import common

    # 10 clips only A gets right, 2 only B: two-sided exact binomial p.
    a = [1] * 10 + [0] * 2 + [1] * 5
    b = [0] * 10 + [1] * 2 + [1] * 5
    test = common.mcnemar(a, b)
    assert (test["a_only"], test["b_only"]) == (10, 2)
    assert abs(test["p"] - 2 * sum(math.comb(12, i) for i in range(3)) / 2 ** 12) < 1e-12
    assert abs(test["p"] - 0.0386) < 1e-3
    assert common.mcnemar([1, 0], [1, 0])["p"] == 1.0  # no discordant clip
    assert "no resolved difference" in common.verdict(0.1, 0.2, 0.3)
    assert "lower error, resolved" in common.verdict(0.1, 0.2, 0.01)
    with pytest.raises(ValueError, match="unpaired"):
        common.mcnemar([1, 0], [1])
    # Thousands of discordant clips (FSDD: 3,000 test clips a seed): no float
    # overflow, and the p of a balanced split is ~1, of a lopsided one ~0.
    many = common.mcnemar([1] * 1500 + [0] * 1500, [0] * 1500 + [1] * 1500)
    assert many["p"] == pytest.approx(1.0)
    assert common.mcnemar([1] * 1400 + [0] * 1000, [0] * 1400 + [1] * 1000)["p"] < 1e-6


def test_speed_tiny(tmp_path):
    out = tmp_path / "speed.json"
    stdout = run_script("speed.py", "--out", str(out), "--device", "cpu")
    assert "ratio" in stdout and "batches/s" in stdout
    payload = json.loads(out.read_text())
    assert {"config", "device", "step_time", "pipeline", "total_seconds"} <= set(payload)
    assert payload["device"]["device"].startswith("CPU")
    assert payload["device"]["backend"] == "tensorflow"
    steps = payload["step_time"]["small_cnn"]
    assert set(steps["methods"]) == {"input", "bc", "manifold", "speechmix"}
    for method, v in steps["methods"].items():
        assert finite(v["plain_median_ms"]) and v["plain_median_ms"] > 0, method
        assert v["ratio"] == pytest.approx(v["mixed_ms"] / v["plain_median_ms"])
        # Every point timed; the mixed cost is the mean of their medians.
        assert len(v["point_median_ms"]) == v["mix_points"]
        assert v["mixed_ms"] == pytest.approx(np.mean(v["point_median_ms"]))
        assert v["ratio_low"] <= v["ratio"] <= v["ratio_high"], method
    # The networks the recipe builds for each method: SpeechMix's waveform
    # and three block points, one point for input mixup and BC.
    assert steps["methods"]["speechmix"]["mix_points"] == 4
    assert steps["methods"]["bc"]["mix_points"] == 1
    assert payload["worst_step_ratio"] == max(v["ratio"] for v in steps["methods"].values())
    pipeline = payload["pipeline"]
    assert set(pipeline["rates"]) == {"batch_only", "keras_mixup", "partner_batches",
                                      "partner_batches_bc"}
    for name, rate in pipeline["rates"].items():
        assert finite(rate["batches_per_s"]) and rate["batches_per_s"] > 0, name
        assert finite(pipeline["pipeline_over_model"][name])
    assert finite(pipeline["model_steps_per_s"])
    loaders = payload["pydataset"]
    assert set(loaders["rates"]) == {"plain_pydataset", "partner_batches",
                                     "partner_batches_bc"}
    for name, rate in loaders["rates"].items():
        assert finite(rate["batches_per_s"]) and rate["batches_per_s"] > 0, name
        assert finite(rate["time_ratio_to_plain"]) and finite(loaders["over_model"][name])
    assert "x plain time" in stdout


def test_streaming_tiny(tmp_path):
    pytest.importorskip("espeakng_loader")
    out = tmp_path / "streaming.json"
    stdout = run_script("streaming.py", "--out", str(out), "--work", str(tmp_path / "work"))
    assert "Peak memory grew" in stdout and "the model's rate" in stdout
    assert "2 workers" in stdout
    payload = json.loads(out.read_text())
    memory, speed, workers = payload["memory"], payload["throughput"], payload["workers"]
    assert [r["files"] for r in memory["runs"]] == [40, 80]
    assert all(finite(r["peak_rss_mb"]) and r["peak_rss_mb"] > 100 for r in memory["runs"])
    assert finite(memory["claim"]["growth"])
    row = speed["runs"][0]
    for key in ("decode_ms_per_clip", "stream_clips_per_s", "model_clips_per_s", "ratio"):
        assert finite(row[key]) and row[key] > 0, key
    assert [r["workers"] for r in workers["runs"]] == [1, 1, 2]
    assert all(len(r["loss"]) == 1 and finite(r["loss"][0]) for r in workers["runs"])


def test_shared_data_path_matches_benchmarks():
    # The scripts default to the same shared-data folder the tests skip on.
    common = bench_module("common")
    assert Path(common.DEFAULT_DATA).resolve() == SHARED_DATA.resolve()


def test_speed_steps_run_on_jax_without_tensorflow(tmp_path):
    # The step table is what a GPU machine without TensorFlow reruns.
    out = tmp_path / "speed_jax.json"
    script = ("import runpy, sys, tests.no_tensorflow\n"
              f"sys.argv = ['speed.py', '--tiny', '--out', {str(out)!r}]\n"
              f"runpy.run_path({str(BENCH / 'speed.py')!r}, run_name='__main__')\n"
              "assert 'tensorflow' not in sys.modules\n")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    payload = json.loads(out.read_text())
    assert payload["device"]["backend"] == "jax" and "pipeline" not in payload
    assert set(payload["step_time"]["small_cnn"]["methods"]) == {
        "input", "bc", "manifold", "speechmix"}
    assert "worst ratio" in done.stdout


def test_ratio_spread_brackets_the_ratio_of_medians():
    sys.path.insert(0, str(BENCH))
    from step_time import ratio_spread

    rng = np.random.default_rng(0)
    plain = 0.1 + 0.005 * rng.standard_normal(400)
    mixed = 1.02 * (0.1 + 0.005 * rng.standard_normal(400))
    ratio, low, high = ratio_spread(mixed, plain)
    assert ratio == pytest.approx(1.02, abs=0.01)
    assert low < ratio < high and high - low < 0.04
    # Fewer, noisier rounds give a wider interval.
    _, low_few, high_few = ratio_spread(mixed[:10] * (1 + 0.2 * rng.random(10)), plain[:10])
    assert high_few - low_few > high - low


def test_ratio_spread_weighs_every_mixing_point_alike():
    # Training draws the point uniformly: steps at a dear point (1.10x) on a
    # quarter of the rounds and a cheap one (1.00x) on the rest still cost
    # 1.05x on average, where the plain median of all steps says 1.00x.
    sys.path.insert(0, str(BENCH))
    from step_time import ratio_spread

    rng = np.random.default_rng(0)
    plain = 0.1 + 0.001 * rng.standard_normal(400)
    points = np.where(np.arange(400) % 4 == 0, 1, 0)
    mixed = np.where(points == 1, 0.110, 0.100) + 0.001 * rng.standard_normal(400)
    ratio, low, high = ratio_spread(mixed, plain, points)
    assert ratio == pytest.approx(1.05, abs=0.005) and low < ratio < high
    assert ratio_spread(mixed, plain)[0] == pytest.approx(1.0, abs=0.005)
    with pytest.raises(ValueError, match="points"):
        ratio_spread(mixed, plain, points[:-1])


@pytest.mark.parametrize("name", ["speechmix_random_clipping", "speechmix_raw_level",
                                  "none_random_clipping"])
def test_validate_recipe_variants_build_what_they_name(name):
    """Each variant of the recipe study trains its own network: a mixing
    variant's name passes the recipe's method check, its overrides reach the
    network, and the recipe is back to its default afterwards."""
    validate_recipe = bench_module("validate_recipe")
    from keras_speechmix.training import experiment, recipe

    before = dict(recipe.RECIPE), recipe.MIXES
    with validate_recipe.variant(name) as mix:
        names = [layer.name for layer in experiment.build_model(mix, 10, 16000, 16000).layers]
    over = validate_recipe.VARIANTS[name][1]
    assert ("random_clipping" in names) == ("random_clipping" in over)
    assert ("level" in names) == over.get("level_norm", True)
    assert (dict(recipe.RECIPE), recipe.MIXES) == before
    with pytest.raises(ValueError, match="`mix` must be one of"):
        experiment.build_model(name, 10, 16000, 16000)


def test_validate_recipe_summary_pairs_noisy_clips_with_the_baseline():
    validate_recipe = bench_module("validate_recipe")
    right, wrong = [1] * 10, [0] * 10

    def run(name, noise_correct):
        return {"variant": name, "seed": 0, "validation_error": 0.0, "correct": right,
                "correct_noise": {shift: noise_correct
                                  for shift in validate_recipe.NOISE_SHIFTS}}

    text = validate_recipe.summary([run("none", wrong), run("speechmix", right)],
                                   ["none", "speechmix"], [0], ("none",))
    noise_lines = [line for line in text.splitlines() if line.startswith("  white:20")]
    # speechmix gets all 10 noisy clips right where plain training gets none.
    assert noise_lines == ["  white:20  none 100.0; speechmix 0.0 (10:0 p=0.00)"]


def test_accuracy_resume_drops_only_the_runs_of_changed_methods():
    accuracy = bench_module("accuracy")
    stored = json.loads((REPO / "results" / "accuracy_esc10_prior.json").read_text())["config"]
    same = dict(stored, hidden_gains={"speechmix": "activation"})
    # A config written before hidden gains were stored reads as today's.
    assert accuracy.changed_methods(stored, same) == set()
    moved = json.loads(json.dumps(same))
    moved["network_points"]["speechmix"] = ["waveform", "block1", "block2", "block3"]
    moved["methods"]["bc"] = dict(moved["methods"]["bc"], alpha=2.0)
    # Plain training's points are identities: SpeechMix's moving leaves it.
    assert accuracy.changed_methods(stored, moved) == {"speechmix", "bc"}
    regained = dict(same, hidden_gains={})
    assert accuracy.changed_methods(same, regained) == {"speechmix"}


def test_accuracy_resume_reads_an_option_added_since_and_off_as_the_same_recipe():
    accuracy = bench_module("accuracy")
    stored = dict(model="logmel_fc", epochs=100)
    assert accuracy.same_recipe(stored, dict(stored, random_clipping=None))
    assert not accuracy.same_recipe(stored, dict(stored, random_clipping=10.0))
    assert not accuracy.same_recipe(stored, dict(stored, epochs=50))
