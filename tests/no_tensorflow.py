"""Importing this module makes TensorFlow look uninstalled in this process.

Test subprocesses import it first (`import tests.no_tensorflow`) to check
that a path needs no TensorFlow. `import tensorflow` then fails with
ModuleNotFoundError and nothing of it enters `sys.modules`, as on a machine
without it. (`sys.modules["tensorflow"] = None` is not enough there: Keras'
preprocessing layers take a "tensorflow" key in `sys.modules` to mean that
TensorFlow is loaded.) `importlib.util.find_spec` still returns a spec,
without origin, so that libraries that only look TensorFlow up, such as
PyTorch's compiler, carry on.
"""

import importlib.abc
import importlib.util
import sys


class _NoTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "tensorflow":
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {spec.name!r}", name=spec.name)

    def exec_module(self, module):
        raise ModuleNotFoundError(f"No module named {module.__name__!r}")


if not any(isinstance(finder, _NoTensorFlow) for finder in sys.meta_path):
    sys.meta_path.insert(0, _NoTensorFlow())
