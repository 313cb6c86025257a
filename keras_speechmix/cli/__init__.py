"""The `speechmix` command (`app.main`): `demo`, `train`, `evaluate` and
`predict`, one module each, with the options (`options`), data checks
(`data`), printed reports (`report`) and plots (`plots`) they share.

The top of the package: it may import everything else; nothing imports it.

Example:

>>> from keras_speechmix.cli import main
>>> main(["--version"])  # doctest: +SKIP
"""

from keras_speechmix.cli.app import main

__all__ = ["main"]
