"""Reference networks with SpeechMix mixing points built in.

`envnet_v2` is the raw-waveform network the SpeechMix authors used, with
their five candidate mixing points; `logmel_cnn` is a small log-mel CNN that
trains quickly on a CPU. Both return a plain functional `keras.Model` whose
`HiddenMixup` layers are the identity until the training view
`keras_speechmix.SpeechMix(model)` activates one of them, so the same model
is trained, evaluated, saved and served without change.

Each scales every clip to one RMS level right after its waveform mixing
point (`audio.level.LevelNormalization`), so a quieter or louder recording
gets the same answer; `level_norm=False` leaves the waveform as it is.

Both models end in a softmax: `model.predict` gives class probabilities and
the matching loss is `keras.losses.CategoricalCrossentropy()` (the default
`from_logits=False`) on the (mixed) one-hot targets. With soft targets this
differs from the authors' KL-divergence loss only by the targets' entropy, a
constant, so the gradients are the same.

Each network is one module (`envnet`, `logmel`, `piczak`); `blocks` holds
what they share, including the mixing-point helper; `saved` writes and
reads the `.keras` file with the clip rate, length and class names. This
package may import the core (`HiddenMixup`) and `audio.features`.

Example:

>>> from keras_speechmix import models
>>> model = models.logmel_cnn(num_classes=3, sample_rate=8000, input_length=8000)
>>> model.output_shape
(None, 3)
"""

from keras_speechmix.models.envnet import envnet_v2
from keras_speechmix.models.logmel import logmel_cnn
from keras_speechmix.models.piczak import piczak_cnn

__all__ = ["envnet_v2", "logmel_cnn", "piczak_cnn"]
