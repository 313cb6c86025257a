"""The package's version, in one place: `keras_speechmix.__version__`,
`speechmix --version` and the built wheel's metadata (setup.py reads this
file as text, without importing the package) all come from here.

Example:

>>> from keras_speechmix._version import __version__
>>> __version__.count(".")
2
"""

__version__ = "0.1.0"
