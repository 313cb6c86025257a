"""SpeechMix for Keras: mixup of hidden activations for sound classifiers.

Example:

>>> import keras_speechmix as ksm
>>> sorted(n for n in ("HiddenMixup", "SpeechMix", "partner_batches") if hasattr(ksm, n))
['HiddenMixup', 'SpeechMix', 'partner_batches']
"""

from keras_speechmix.callbacks import MixLogger, MixOff, MixWarmup
from keras_speechmix.gain import gain_db
from keras_speechmix.layer import HiddenMixup, active_plan, plan_scope
from keras_speechmix.pipeline import partner_batches
from keras_speechmix.view import SpeechMix, mix_layers

__version__ = "0.1.0"

__all__ = [
    "HiddenMixup",
    "SpeechMix",
    "partner_batches",
    "gain_db",
    "mix_layers",
    "active_plan",
    "plan_scope",
    "MixWarmup",
    "MixOff",
    "MixLogger",
]
