"""The package's layout: imports run one way, moved modules stay reachable,
and models saved before the regrouping still load."""

import ast
import importlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

import keras_speechmix as ksm

PACKAGE = Path(ksm.__file__).parent
# Each part and the parts it must not import (README's package map).
FORBIDDEN = {
    "core": ("audio", "models", "training", "cli"),
    "audio": ("models", "training", "cli"),
    "models": ("training", "cli"),
    "training": ("cli",),
    "cli": (),
}


def _part(path):
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else "core"


def _imported_parts(path):
    """The package parts a module imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "keras_speechmix" and len(parts) > 1 and parts[1] in FORBIDDEN:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    if path.name in ("__init__.py", "__main__.py") and path.parent == PACKAGE:
        return  # the package root re-exports names and aliases moved modules
    bad = _imported_parts(path) & set(FORBIDDEN[_part(path)])
    assert not bad, f"{path.relative_to(PACKAGE)} ({_part(path)}) imports {sorted(bad)}"


def test_the_one_way_check_sees_a_wrong_import(tmp_path):
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def f():\n    from keras_speechmix.cli import main\n")
    assert _imported_parts(wrong) == {"cli"}


@pytest.mark.parametrize("name, module", sorted(ksm._MOVED.items()))
def test_moved_modules_stay_reachable_from_the_package(name, module):
    assert getattr(ksm, name) is importlib.import_module(module)
    namespace = {}
    exec(f"from keras_speechmix import {name}", namespace)
    assert namespace[name] is importlib.import_module(module)


def test_audio_keeps_the_decoding_names():
    from keras_speechmix import audio
    from keras_speechmix.audio import decode

    for name in decode.__all__:
        assert getattr(audio, name) is getattr(decode, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        audio.nothing  # noqa: B018


def test_a_model_saved_before_the_regrouping_loads(tmp_path):
    """Models saved before the feature layers moved name their old module;
    the registered names load them all the same."""
    from keras_speechmix import models

    model = models.logmel_cnn(3, sample_rate=8000, input_length=4000)
    path = tmp_path / "new.keras"
    ksm.save_model(model, path, sample_rate=8000, class_names=["a", "b", "c"])
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                text = data.decode()
                assert "keras_speechmix.audio.features" in text
                data = text.replace("keras_speechmix.audio.features",
                                    "keras_speechmix.features").encode()
            target.writestr(item, data)
    loaded = ksm.load_model(old)
    waves = np.random.default_rng(0).normal(size=(2, 4000)).astype("float32") * 0.1
    np.testing.assert_allclose(loaded.predict(waves, verbose=0),
                               model.predict(waves, verbose=0), rtol=1e-5, atol=1e-6)
