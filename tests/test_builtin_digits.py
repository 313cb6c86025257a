"""The built-in spoken digits (`datasets.builtin_digits`): content, exactness
against FSDD's own files, and presence in a built wheel."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from keras_speechmix.audio import datasets

ROOT = Path(__file__).resolve().parents[1]
SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def test_six_speakers_ten_digits_eight_takes():
    clips = datasets.builtin_digits()
    assert len(clips) == 480 and clips.sample_rate == 8000
    assert clips.class_names == [str(d) for d in range(10)]
    assert sorted(set(clips.groups)) == SPEAKERS
    cells = {(g, int(y), int(t)) for g, y, t in zip(clips.groups, clips.labels,
                                                   clips.meta["index"])}
    assert cells == {(s, d, t) for s in SPEAKERS for d in range(10) for t in range(8)}
    for path, label, speaker, take in zip(clips.paths, clips.labels, clips.groups,
                                          clips.meta["index"]):
        assert path == f"{label}_{speaker}_{take}.wav"
    assert all(w.dtype == np.float32 and w.ndim == 1 and 0.1 < len(w) / 8000 < 2.5
               for w in clips.waveforms)
    peaks = np.array([np.abs(w).max() for w in clips.waveforms])
    assert peaks.max() < 1.0 and peaks.min() > 0.01  # 16-bit scale, no silent clip
    # Speaker-held-out splits work on it as on `fsdd`.
    train, test = datasets.split_by_group(clips, "yweweler")
    assert len(train) == 400 and set(test.groups) == {"yweweler"}


def test_equals_fsdd_files(shared_data):
    """Lossless: every clip equals its FSDD WAV file as the loaders read it."""
    folder = shared_data / "fsdd" / "recordings"
    clips = datasets.builtin_digits()
    wanted = [folder / p for p in clips.paths]
    files = datasets.fsdd(folder)
    by_name = dict(zip((Path(p).name for p in files.paths), files.waveforms))
    assert all(p.exists() for p in wanted)
    for path, wave in zip(clips.paths, clips.waveforms):
        np.testing.assert_array_equal(wave, by_name[path], err_msg=path)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from this checkout (no dependencies, no network)."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "src"
    # A copy, so that the build's own folders stay out of the checkout.
    for name in ("setup.py", "README.md", "MANIFEST.in"):
        if (ROOT / name).exists():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    for path in (ROOT / "keras_speechmix").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            target = source / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out / "dist"), str(source)],
        capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (found,) = (out / "dist").glob("keras_speechmix-*.whl")
    return found


def test_wheel_carries_the_digits_licence_and_credits(wheel):
    with zipfile.ZipFile(wheel) as archive:
        sizes = {i.filename: i.compress_size for i in archive.infolist()}
    data = {name: size for name, size in sizes.items()
            if name.startswith("keras_speechmix/audio/data/")}
    assert set(data) == {"keras_speechmix/audio/data/fsdd_digits.npz",
                         "keras_speechmix/audio/data/FSDD_LICENSE.txt",
                         "keras_speechmix/audio/data/FSDD_ATTRIBUTION.txt"}
    assert sum(data.values()) <= 3_000_000


def test_wheel_loads_the_digits_without_the_checkout(wheel, tmp_path):
    """Unpacked alone (no checkout, no ../shared on the path), the installed
    package finds its data."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    code = ("import keras_speechmix.audio.datasets as d; c = d.builtin_digits(); "
            "print(d.__file__); print(len(c), c.sample_rate, sorted(set(c.groups))[-1])")
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3")
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    where, counts = ran.stdout.strip().splitlines()[-2:]
    assert Path(where).is_relative_to(site)
    assert counts == "480 8000 yweweler"
