"""The package is publishable: one version, an sdist and a wheel built from
this checkout that pass `twine check --strict` and carry the licences, the
FSDD attribution and the built-in data, and a tested stack that pins every
requirement."""

import email.parser
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import keras_speechmix

ROOT = Path(__file__).resolve().parents[1]
# What the wheel installs beside the code and the sdist holds under the
# package: the FSDD subset, its CC BY-SA 4.0 licence and its credits.
DATA = ["keras_speechmix/audio/data/fsdd_digits.npz",
        "keras_speechmix/audio/data/FSDD_LICENSE.txt",
        "keras_speechmix/audio/data/FSDD_ATTRIBUTION.txt"]
TOP_FILES = ["LICENSE", "README.md", "CHANGELOG.md", "constraints.txt", "setup.py",
             "MANIFEST.in"]
# The build's own leftovers, kept out of the copy built from.
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


def _run(*args, timeout=300):
    ran = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert ran.returncode == 0, f"{' '.join(map(str, args))}:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    return ran.stdout


def test_one_version():
    """`keras_speechmix.__version__` is what setup.py builds, and the
    changelog has its section."""
    reported = _run(sys.executable, "setup.py", "--version", timeout=120).strip().splitlines()[-1]
    assert reported == keras_speechmix.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", keras_speechmix.__version__)
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{keras_speechmix.__version__}]" in changelog


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """The sdist, and the wheel built from it (as `python -m build` does with
    no target named: a wheel built from the sdist shows that the sdist holds
    everything setup.py reads), from a copy of the checkout's package files,
    so that the build's folders stay out of the checkout. No build isolation:
    setuptools comes from the dev extra, so nothing is downloaded."""
    base = tmp_path_factory.mktemp("dists")
    source, out = base / "src", base / "dist"
    shutil.copytree(ROOT / "keras_speechmix", source / "keras_speechmix", ignore=SKIP)
    for name in TOP_FILES:
        shutil.copy2(ROOT / name, source / name)
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source))
    (sdist,) = out.glob("keras_speechmix-*.tar.gz")
    (wheel,) = out.glob("keras_speechmix-*.whl")
    return sdist, wheel


def test_twine_check_strict(dists):
    """The metadata is complete and the long description renders."""
    output = _run(sys.executable, "-m", "twine", "check", "--strict", *map(str, dists))
    assert output.count("PASSED") == 2, output


def test_sdist_holds_licences_data_and_what_setup_reads(dists):
    sdist, _ = dists
    top = f"keras_speechmix-{keras_speechmix.__version__}"
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    for name in TOP_FILES + DATA + ["keras_speechmix/_version.py"]:
        assert f"{top}/{name}" in names, f"{name} is not in the sdist"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_holds_licences_data_and_metadata(dists):
    _, wheel = dists
    version = keras_speechmix.__version__
    info = f"keras_speechmix-{version}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = email.parser.Parser().parsestr(
            archive.read(f"{info}/METADATA").decode("utf-8"))
        licence = archive.read(next(n for n in names if n.startswith(info)
                                    and n.endswith("/LICENSE")))
    for name in DATA:
        assert name in names, f"{name} is not in the wheel"
    # The licence files setup.py names sit in the wheel's metadata folder too.
    licence_files = metadata.get_all("License-File") or []
    assert {"LICENSE", "FSDD_LICENSE.txt", "FSDD_ATTRIBUTION.txt"} <= {
        Path(f).name for f in licence_files}
    for name in licence_files:
        assert any(n.startswith(info) and n.endswith("/" + Path(name).name) for n in names)
    assert licence == (ROOT / "LICENSE").read_bytes()
    assert b"Apache License" in licence and b"Version 2.0" in licence
    assert _canonical(metadata["Name"]) == "keras-speechmix"
    assert metadata["Version"] == version
    assert metadata["License"] == "Apache-2.0"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert f"{info}/entry_points.txt" in names


def test_constraints_pin_every_requirement(dists):
    """constraints.txt (the tested stack) pins every requirement of the
    package and of its audio, dev and docs extras."""
    _, wheel = dists
    with zipfile.ZipFile(wheel) as archive:
        info = f"keras_speechmix-{keras_speechmix.__version__}.dist-info"
        metadata = email.parser.Parser().parsestr(
            archive.read(f"{info}/METADATA").decode("utf-8"))
    tested = {"audio", "dev", "docs"}
    required = set()
    for requirement in metadata.get_all("Requires-Dist"):
        extra = re.search(r"extra == ['\"](\w+)['\"]", requirement)
        if extra is None or extra.group(1) in tested:
            required.add(_canonical(re.match(r"[A-Za-z0-9._-]+", requirement).group()))
    pinned = {_canonical(line.split("==")[0]) for line in
              (ROOT / "constraints.txt").read_text().splitlines()
              if "==" in line and not line.lstrip().startswith("#")}
    # mkdocstrings[python] is pinned as mkdocstrings and mkdocstrings-python.
    assert "mkdocstrings-python" in pinned
    assert sorted(required - pinned) == []


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()
