"""SpeechMix for Keras: mixup of hidden activations for sound classifiers.

The layer (`HiddenMixup`) and the training view (`SpeechMix`) use only
`keras.ops`, and `PartnerBatches` (a `keras.utils.PyDataset`) and
`PlanSampler` draw plans in NumPy; the tf.data side (`partner_batches`,
`gain_db`, the callbacks) is imported on first use, so training also runs
where only Keras and a JAX or PyTorch backend are installed.

Example:

>>> import keras_speechmix as ksm
>>> sorted(n for n in ("HiddenMixup", "SpeechMix", "partner_batches",
...                    "PartnerBatches") if hasattr(ksm, n))
['HiddenMixup', 'PartnerBatches', 'SpeechMix', 'partner_batches']
"""

import importlib
import os
import sys


def _run_as_command():
    """Whether this process is the `speechmix` command (script or -m)."""
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    argv = getattr(sys, "orig_argv", [])
    return script == "speechmix" or any(
        flag == "-m" and module == "keras_speechmix"
        for flag, module in zip(argv, argv[1:]))


# The command must show only its own output, but TensorFlow prints its C++
# start-up lines (oneDNN notice, CUDA plugin registration errors) while
# loading, and the package loads it right below: quieten them first.
def _load_backend_quietly():
    """Imports Keras (and so its backend) with the process's stderr (fd 2)
    pointed at /dev/null: TensorFlow 2.21 writes its C++ start-up lines
    before absl logging reads TF_CPP_MIN_LOG_LEVEL. An import error still
    shows: it is raised after stderr is restored."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to quieten
        import keras  # noqa: F401
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


if _run_as_command():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _load_backend_quietly()

from keras_speechmix.layer import HiddenMixup, active_plan, plan_scope  # noqa: E402
from keras_speechmix.view import SpeechMix, mix_layers  # noqa: E402
from keras_speechmix.mix_points import add_mix_points  # noqa: E402
from keras_speechmix.plans import PlanSampler  # noqa: E402
from keras_speechmix.pydataset import PartnerBatches  # noqa: E402
# Every layer a saved model can hold is registered on import, so that
# keras.models.load_model reads a model saved by this package.
from keras_speechmix.audio.features import LogMelSpectrogram, SpecAugment  # noqa: E402
from keras_speechmix.audio.clipping import RandomClipping  # noqa: E402
from keras_speechmix.audio.level import LevelNormalization  # noqa: E402
from keras_speechmix.calibration import (  # noqa: E402
    TemperatureScaling, expected_calibration_error, fit_temperature,
    negative_log_likelihood, with_temperature)
from keras_speechmix.models.saved import (  # noqa: E402
    load_model, model_info, predict_clips, save_model)

# One source for the version: setup.py reads _version.py as text.
from keras_speechmix._version import __version__  # noqa: E402,F401

# Names that need TensorFlow, and the module that holds each.
_LAZY = {
    "partner_batches": "keras_speechmix.pipeline",
    "gain_db": "keras_speechmix.gain",
    "MixWarmup": "keras_speechmix.callbacks",
    "MixOff": "keras_speechmix.callbacks",
    "MixLogger": "keras_speechmix.callbacks",
    "EpochClock": "keras_speechmix.epochs",
}

__all__ = ["HiddenMixup", "SpeechMix", "mix_layers", "add_mix_points",
           "active_plan", "plan_scope",
           "PartnerBatches", "PlanSampler", "LogMelSpectrogram", "SpecAugment",
           "LevelNormalization", "RandomClipping", "TemperatureScaling", "with_temperature",
           "fit_temperature", "expected_calibration_error", "negative_log_likelihood",
           "load_model", "model_info", "predict_clips", "save_model", *_LAZY]


# Modules that moved into subpackages: `ksm.datasets` and `from
# keras_speechmix import datasets` keep working (thin aliases, loaded on use).
_MOVED = {
    "datasets": "keras_speechmix.audio.datasets",
    "features": "keras_speechmix.audio.features",
    "streaming": "keras_speechmix.audio.streaming",
    "synth": "keras_speechmix.audio.synth",
    "experiment": "keras_speechmix.training.experiment",
    "multiworker": "keras_speechmix.training.multiworker",
    "saved": "keras_speechmix.models.saved",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _MOVED:
        return importlib.import_module(_MOVED[name])
    raise AttributeError(f"module 'keras_speechmix' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_MOVED))
