"""One recipe, one path: `speechmix train` with no flags trains exactly what
benchmarks/accuracy.py measures (issue 18 item 2)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from keras_speechmix import cli
from keras_speechmix.cli import options
from keras_speechmix.training import experiment

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


class _Stop(Exception):
    pass


def _recorder(calls):
    """A stand-in for `train_clips` that records its call and stops the run."""
    def train_clips(train, test=None, **kwargs):
        calls.append(dict(kwargs, train=train, test=test))
        raise _Stop
    return train_clips


def _effective(call):
    """The settings a train_clips call trains with, defaults filled in."""
    mix = call.get("mix", "speechmix")
    model = call.get("model") or experiment.RECIPE["model"]
    network = experiment.NETWORKS[model]
    epochs = call.get("epochs") or experiment.RECIPE[
        "epochs" if mix == "none" else "mix_epochs"]
    return dict(mix=mix, model=model, epochs=epochs, seed=call.get("seed", 0),
                batch_size=call.get("batch_size") or experiment.RECIPE["batch_size"],
                learning_rate=call.get("learning_rate") or network["learning_rate"],
                alpha=call.get("alpha"), length=call.get("length"),
                mix_off=experiment.RECIPE["mix_off"] if call.get("mix_off") is None
                else call["mix_off"],
                crops=call.get("crops", 10),
                train=sorted(call["train"].paths),
                validation=sorted(call["validation"].paths)
                if call.get("validation") is not None else None,
                trimmed_lengths=sorted(len(w) for w in call["train"].waveforms))


def _folded_csv(tmp_path):
    """A CSV data set with folds whose clips carry digital silence to trim."""
    rng = np.random.default_rng(0)
    rows = ["path,fold,label"]
    for fold in (1, 2, 3):
        for label in ("bark", "rain"):
            for take in range(4):
                sound = 0.3 * rng.standard_normal(2000 + 300 * take)
                wave = np.concatenate([np.zeros(1500), sound, np.zeros(900)])
                name = f"{fold}-{label}{take}-A-{label}.wav"
                soundfile.write(tmp_path / name, wave.astype("float32"), 16000,
                                subtype="FLOAT")
                rows.append(f"{name},{fold},{label}")
    (tmp_path / "meta.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "meta.csv"


def test_command_defaults_are_the_recipe():
    args = options._parser().parse_args(["train", "--data", "x.csv", "--out", "run"])
    assert args.model == experiment.RECIPE["model"]
    assert args.validation == experiment.RECIPE["validation"]
    assert args.trim_silence == experiment.RECIPE["trim_silence"]
    # Left None, train_clips fills them from the recipe and the network.
    assert (args.epochs, args.batch_size, args.mix_off, args.learning_rate,
            args.alpha, args.clip_seconds) == (None,) * 6
    opted_out = options._parser().parse_args(["train", "--data", "x.csv", "--out", "run",
                                          "--no-trim-silence"])
    assert opted_out.trim_silence is False


def test_command_and_benchmark_train_the_same_clips_the_same_way(tmp_path, monkeypatch):
    csv = _folded_csv(tmp_path)
    calls = []
    monkeypatch.setattr(experiment, "train_clips", _recorder(calls))
    with pytest.raises(_Stop):
        cli.main(["train", "--data", str(csv), "--test-folds", "3", "--seed", "1",
                  "--out", str(tmp_path / "run"), "--quiet"])
    sys.path.insert(0, str(BENCH))
    import accuracy

    monkeypatch.setattr(accuracy.common, "load_esc10",
                        lambda root, rate: experiment.datasets.from_csv(csv, sample_rate=rate))
    clips = accuracy.Data(str(tmp_path)).get(dict(data="esc10", name="esc10"))
    [(_, train, test)] = [s for s in accuracy.common.fold_splits(clips) if s[0] == "fold3"]
    with pytest.raises(_Stop):
        accuracy.one_run(train, test, "speechmix", 1, dict(name="esc10", data="esc10"))
    command, benchmark = (_effective(c) for c in calls)
    assert command == benchmark
    # The recipe's trimming and hold-out really happened on that path.
    assert experiment.RECIPE["trim_silence"] and max(command["trimmed_lengths"]) < 4400
    assert command["validation"] and not set(command["validation"]) & set(command["train"])
