"""`piczak_cnn`: Piczak's ESC convnet (MLSP 2015) on log-mel patches, with
candidate mixing points at the waveform, the input and after each block.
"""

import keras
from keras import layers

from keras_speechmix.audio.features import LogMelSpectrogram
from keras_speechmix.models.blocks import (
    _BN_MOMENTUM, _check_dropout, _check_points,
    _check_positive_int, _conv_bn_relu, _level_layers, _mixer)

__all__ = ["piczak_cnn"]

_PICZAK_CANDIDATES = ("waveform", "input", "block1", "block2", "fc1", "fc2")
_PICZAK_DEFAULT_POINTS = ("input", "block1", "block2")


def piczak_cnn(num_classes, sample_rate=22050, input_length=20480,
               num_mel_bins=60, hidden_units=5000, dropout=0.5,
               mix_points=None, hidden_gain="plan", level_norm=True,
               random_clipping=None,
               name="piczak_cnn"):
    """Piczak's ESC CNN on log-mels, with batch norm and SpeechMix points.

    The network of Piczak (MLSP 2015, karolpiczak/paper-2015-esc-convnet)
    in the "+ BN" form BC learning and InterMix report it in (ESC-10 error
    13.2 % standard, 9.4 % BC learning, 8.4 % SpeechMix):

    waveform -> log-mel (1024-point FFT, hop 512, i.e. 46 / 23 ms at
    22,050 Hz; 60 bands) + delta (2 channels) -> batch norm per (band,
    channel) -> conv1 80 @ 57 bands x 6 frames + BN + ReLU -> max-pool
    4 x 3 (stride 1 x 3) -> dropout -> conv2 80 @ 1 x 3 + BN + ReLU ->
    max-pool 1 x 3 -> dense `hidden_units` + BN + ReLU + dropout -> dense
    `hidden_units` + BN + ReLU + dropout -> softmax.

    With the defaults (41 frames, the paper's "short" segments of ~0.95 s)
    it has 26.3 M parameters but does only ~35 M multiply-adds per segment:
    much capacity for little compute. Predict a whole clip by averaging the
    probabilities of its segments (`keras_speechmix.training.experiment.predict_clips`
    does), Piczak's "probability voting".

    Departures from the paper, each deliberate:

    - Batch norm after every conv and dense layer (the "+ BN" variant; its
      exact placement was not published) and on the input features, instead
      of one mean/std over the training set.
    - Features are `log(mel + 1e-6)` with HTK regression deltas over 5
      frames, computed inside the model (librosa's dB scale and 9-frame
      deltas differ by an affine map the input batch norm absorbs, and the
      window).
    - Max-pool windows that would cross the segment's edge are dropped, as
      in Keras' "valid" pooling (so do the paper's Theano layers).

    Mixing points (`HiddenMixup` layers named `mix_<point>`), in network
    order: "waveform" (BC's gain-aware rule), "input" (the log-mel features,
    before their batch norm), "block1" (after conv1's pooling), "block2"
    (after conv2's pooling), "fc1" and "fc2" (after each dense layer's
    ReLU, before its dropout). The default, `("input", "block1", "block2")`,
    is SpeechMix's rule: the input and every conv stage, never the dense
    layers.

    References:
        Piczak, "Environmental sound classification with convolutional
        neural networks", MLSP 2015.
        Tokozume, Ushiku and Harada, "Learning from Between-class Examples
        for Deep Sound Recognition", ICLR 2018.
        Jindal, Ranganathan Elavazhagan, Sawhney and Shah, "SpeechMix -
        Augmenting Deep Sound Recognition using Hidden Space
        Interpolations", Interspeech 2020.

    Args:
        num_classes: number of output classes (>= 2).
        sample_rate: sample rate of the input audio in Hz; the frame and
            hop lengths stay 46.4 / 23.2 ms at other rates.
        input_length: samples per input segment (20,480 at 22,050 Hz gives
            the paper's 41 frames; 51,200 its "long" 101 frames).
        num_mel_bins: mel bands (>= 57, conv1's height).
        hidden_units: width of the two dense layers (paper: 5,000).
        dropout: dropout rate after conv1's pooling and each dense layer.
        hidden_gain: gains of the "sound" rule at hidden points (with
            `partner_batches(ratio="bc")`): `"plan"`, the input clips'
            waveform gains, or `"activation"`, measured from each activation
            as the SpeechMix authors' code does (`HiddenMixup(gain=...)`).
        mix_points: names of the mixing points to insert (see above).
        level_norm: scale each clip to one RMS level (`LevelNormalization`)
            right after the waveform mixing point, so the answer does not
            depend on the recording level; `False` feeds the waveform as it
            is (models before issue 27).
        random_clipping: `None`, or a gain in dB: in training, half the
            clips are made up to this much louder and clipped at full scale
            (`RandomClipping`, before the level normalisation), so that a
            clipped recording gets the same answer.
        name: model name.

    Returns:
        A functional `keras.Model` mapping waveforms `(batch, input_length)`
        to class probabilities `(batch, num_classes)`.

    Raises:
        ValueError: for an invalid argument, or an input too short for
            conv1 and the pooling stack.

    Example:

    >>> import numpy as np
    >>> model = piczak_cnn(10, hidden_units=64)
    >>> [layer.name for layer in model.layers if "mix" in layer.name]
    ['mix_input', 'mix_block1', 'mix_block2']
    >>> model.predict(np.zeros((2, 20480), "float32"), verbose=0).shape
    (2, 10)
    """
    _check_positive_int("num_classes", num_classes, 2)
    _check_positive_int("sample_rate", sample_rate)
    _check_positive_int("input_length", input_length)
    _check_positive_int("num_mel_bins", num_mel_bins, 57)
    _check_positive_int("hidden_units", hidden_units)
    _check_dropout(dropout)
    points = _check_points(mix_points, _PICZAK_CANDIDATES, _PICZAK_DEFAULT_POINTS)
    # Frames left after conv1 (6 wide), pool (3), conv2 (3 wide), pool (3).
    frames = 1 + input_length // int(round(sample_rate * 512 / 22050))
    if ((frames - 5) // 3 - 2) // 3 < 1:
        raise ValueError(
            f"`input_length`={input_length} gives {frames} frames at "
            f"{sample_rate} Hz; Piczak's CNN needs at least 20 (about "
            f"{int(19 * 512 * sample_rate / 22050)} samples).")

    mix = _mixer(points, hidden_gain=hidden_gain)

    inputs = keras.Input((input_length,), name="waveform")
    h = mix(inputs, "waveform")
    h = _level_layers(h, level_norm, random_clipping)
    h = LogMelSpectrogram(sample_rate=sample_rate, num_mel_bins=num_mel_bins,
                          frame_length_ms=1024 * 1000 / 22050,
                          frame_step_ms=512 * 1000 / 22050, fft_length=1024,
                          min_freq=0.0, deltas=True, delta_order=1,
                          name="logmel")(h)
    h = mix(h, "input")
    frames, mels, channels = h.shape[1:]
    h = layers.Reshape((frames, mels * channels), name="bands")(h)
    h = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="input_norm")(h)
    h = layers.Reshape((frames, mels, channels), name="unbands")(h)
    # Keras' image axes are (frames, bands): the paper's 57 x 6 (bands x
    # frames) kernel is (6, 57) here.
    h = _conv_bn_relu(h, "conv1", 80, (6, 57))
    h = layers.MaxPooling2D((3, 4), strides=(3, 1), name="pool1")(h)
    h = mix(h, "block1")
    h = layers.Dropout(dropout, name="pool1_dropout")(h)
    h = _conv_bn_relu(h, "conv2", 80, (3, 1))
    h = layers.MaxPooling2D((3, 1), strides=(3, 1), name="pool2")(h)
    h = mix(h, "block2")
    h = layers.Flatten(name="flatten")(h)
    for fc in ("fc1", "fc2"):
        h = layers.Dense(hidden_units, use_bias=False, name=fc)(h)
        h = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{fc}_bn")(h)
        h = layers.ReLU(name=f"{fc}_relu")(h)
        h = mix(h, fc)
        h = layers.Dropout(dropout, name=f"{fc}_dropout")(h)
    h = layers.Dense(num_classes, name="classifier")(h)
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(h)
    return keras.Model(inputs, outputs, name=name)
