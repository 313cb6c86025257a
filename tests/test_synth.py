"""Tests for keras_speechmix.audio.synth: the offline eSpeak NG digit set."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_speechmix import audio
from keras_speechmix.audio import datasets, synth


def _espeak_problem():
    try:
        synth._ESpeak.get()
    except RuntimeError as e:
        return str(e)
    return None


PROBLEM = _espeak_problem()
needs_espeak = pytest.mark.skipif(PROBLEM is not None, reason=f"eSpeak NG unusable: {PROBLEM}")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if PROBLEM is not None:
        pytest.skip(f"eSpeak NG unusable: {PROBLEM}")
    out = tmp_path_factory.mktemp("synth") / "digits"
    return synth.synthesize_digits(out, num_speakers=2, takes_per_speaker=1, seed=4)


def test_tiny_synthesis_writes_ten_class_folders(tiny):
    folders = sorted(p.name for p in tiny.iterdir() if p.is_dir())
    assert folders == sorted(synth.DIGITS)
    files = sorted(tiny.glob("*/*.wav"))
    assert len(files) == 20
    for path in files:
        digit, speaker, take = datasets.FSDD_NAME.match(path.stem).groups()
        assert path.parent.name == synth.DIGITS[int(digit)] and take == "0"
        wave, rate = audio.load_audio(path)
        assert rate == 16000
        assert 0.2 < len(wave) / rate < 3.0
        assert np.abs(wave).max() > 0.1  # speech, not silence or noise only
        # Louder in the middle (speech) than at the padded edges (noise).
        edge = np.sqrt(np.mean(wave[:400] ** 2))
        assert np.sqrt(np.mean(wave**2)) > 5 * edge
    marker = json.loads((tiny / synth.MARKER).read_text())
    assert marker["files"] == 20 and len(marker["speakers"]) == 2


def test_loaders_read_the_synthesised_set(tiny):
    clips = datasets.from_folder(tiny)
    assert len(clips) == 20 and clips.num_classes == 10 and clips.report.skipped == []
    loaded = synth.load_default_digits(out_dir=tiny, num_speakers=2, takes_per_speaker=1, seed=4)
    assert len(loaded) == 20 and loaded.sample_rate == 16000
    assert len(set(loaded.groups)) == 2
    assert loaded.meta["index"].tolist() == [0] * 20
    train, test = datasets.split_by_group(loaded, loaded.groups[0])
    assert (len(train), len(test)) == (10, 10)


def test_finished_set_is_reused_and_foreign_folders_are_protected(tiny, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in tiny.glob("*/*.wav")}
    again = synth.synthesize_digits(tiny, num_speakers=2, takes_per_speaker=1, seed=4)
    assert again == tiny
    assert {p: p.stat().st_mtime_ns for p in tiny.glob("*/*.wav")} == before
    with pytest.raises(FileExistsError, match="overwrite=True"):
        synth.synthesize_digits(tiny, num_speakers=3, takes_per_speaker=1, seed=4)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="does not hold a finished synthesis"):
        synth.synthesize_digits(foreign, num_speakers=1, takes_per_speaker=1)
    assert (foreign / "keep.txt").exists()


@needs_espeak
def test_native_rate_and_overwrite(tmp_path):
    out = tmp_path / "native"
    path = synth.synthesize_digits(out, num_speakers=1, takes_per_speaker=1, sample_rate=22050)
    wave, rate = audio.load_audio(next(path.glob("seven/*.wav")))
    assert rate == 22050 and np.abs(wave).max() > 0.1
    first = {p.name for p in path.glob("*/*.wav")}
    path = synth.synthesize_digits(
        out, num_speakers=1, takes_per_speaker=2, sample_rate=22050, overwrite=True
    )
    assert len(list(path.glob("*/*.wav"))) == 20 and first < {p.name for p in path.glob("*/*.wav")}
    assert not list(tmp_path.glob("native.tmp-*"))  # staging folder cleaned up


def test_speaker_plans_are_distinct_and_deterministic():
    plans = synth._speakers(len(synth.ACCENTS) * len(synth.VARIANTS), seed=0)
    assert len({(p["accent"], p["variant"]) for p in plans}) == len(plans)
    assert len({p["name"] for p in plans}) == len(plans)
    assert all("_" not in p["name"] for p in plans)  # keeps file names parseable
    assert synth._speakers(12, seed=0) == synth._speakers(12, seed=0)
    assert synth._speakers(12, seed=0) != synth._speakers(12, seed=1)
    assert len({p["accent"] for p in synth._speakers(8, seed=0)}) == 8


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="num_speakers"):
        synth.synthesize_digits(tmp_path / "x", num_speakers=0)
    with pytest.raises(ValueError, match="exceeds"):
        synth.synthesize_digits(tmp_path / "x", num_speakers=10_000)


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_SPEECHMIX_CACHE", str(tmp_path / "c1"))
    assert synth.default_cache_dir() == tmp_path / "c1"
    monkeypatch.delenv("KERAS_SPEECHMIX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert synth.default_cache_dir() == tmp_path / "xdg" / "keras_speechmix"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert synth.default_cache_dir() == Path.home() / ".cache" / "keras_speechmix"


def test_missing_espeak_gives_actionable_error(monkeypatch, tmp_path):
    monkeypatch.setattr(synth._ESpeak, "_instance", None)
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import fails
    with pytest.raises(RuntimeError, match=r"espeakng-loader.*speechmix train --data DIR"):
        synth.synthesize_digits(tmp_path / "d", num_speakers=1, takes_per_speaker=1)
    assert not (tmp_path / "d").exists()
