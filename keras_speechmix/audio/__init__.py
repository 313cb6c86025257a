"""Sound in: decoding, features, datasets, streaming and the built-in data.

- `decode`: soundfile decoding and soxr resampling, waveform utilities
  (`load_audio`, `decode_audio`, `resample`, `fix_length`, `multi_crop`,
  `normalize`, `tensorflow_io`); its names are also this package's.
- `features`: the `LogMelSpectrogram` and `SpecAugment` layers (keras.ops only).
- `datasets`: `ClipSet`, its loaders and its splits.
- `streaming`: `FileSet`, files read as training goes.
- `synth`: eSpeak NG digits, the tests' and benchmarks' synthetic data.
- `data/`: the built-in real spoken digits (FSDD subset, CC BY-SA 4.0).

This package may import the core (`keras_speechmix.epochs`), never the
reference networks, the training recipe or the command. Its decoding
modules need TensorFlow; they load on first use, so that the feature
layers import on a JAX-only install.

Example:

>>> import numpy as np
>>> from keras_speechmix import audio
>>> audio.fix_length(np.ones(5, "float32"), 8, mode="center").shape
TensorShape([8])
"""

import importlib

# Today's names of `keras_speechmix.audio` (the decoding module before the
# package was split) stay importable from here.
_DECODE = ("HAVE_TFIO", "PIN_HINT", "FORMATS", "AudioDecodeError", "decode_audio",
           "load_audio", "to_mono", "resample", "fix_length", "sound_crop",
           "training_crop", "multi_crop", "normalize",
           "tensorflow_io")


def __getattr__(name):
    if name in _DECODE:
        return getattr(importlib.import_module("keras_speechmix.audio.decode"), name)
    raise AttributeError(f"module 'keras_speechmix.audio' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_DECODE))
