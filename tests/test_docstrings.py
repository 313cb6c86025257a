"""Every module's docstring examples run and print what they say, and every
public class and function has a docstring with an example."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import keras_speechmix

MODULES = sorted(info.name for info in pkgutil.walk_packages(
    keras_speechmix.__path__, "keras_speechmix.") if not info.name.endswith("__main__"))


@pytest.mark.parametrize("name", ["keras_speechmix"] + MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def _public(module):
    names = getattr(module, "__all__", None)
    if names is None:
        return []
    return [(n, getattr(module, n)) for n in names
            if inspect.isclass(getattr(module, n)) or inspect.isfunction(getattr(module, n))]


@pytest.mark.parametrize("name", MODULES)
def test_public_names_have_an_example(name):
    module = importlib.import_module(name)
    missing = [n for n, obj in _public(module)
               if obj.__module__ == name and "Example" not in (inspect.getdoc(obj) or "")]
    assert not missing, f"{name}: no docstring example for {missing}"
