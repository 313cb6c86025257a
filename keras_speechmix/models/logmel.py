"""`logmel_cnn`: a small log-mel CNN (the recipe's `logmel_fc` is one
configuration of it) that trains quickly on a CPU; candidate mixing points
at the waveform, the log-mel input and after every block.
"""

import keras
from keras import layers

from keras_speechmix.audio.features import LogMelSpectrogram, SpecAugment
from keras_speechmix.models.blocks import (
    _BN_MOMENTUM, _check_dropout, _check_points,
    _check_positive_int, _conv_bn_relu, _level_layers, _mixer)

__all__ = ["logmel_cnn"]


def _logmel_candidates(num_blocks, num_dense=0):
    return ("waveform", "input",
            *(f"block{i}" for i in range(1, num_blocks + 1)), "pooled",
            *(f"dense{i}" for i in range(1, num_dense + 1)))


def logmel_cnn(num_classes, sample_rate=16000, input_length=16000,
               num_mel_bins=64, frame_step_ms=10.0, filters=(32, 64, 128),
               mix_points=None, spec_augment=False, dropout=0.3,
               pooling="average", dense_units=(), dense_dropout=0.5,
               hidden_gain="plan", level_norm=True,
               random_clipping=None, name="logmel_cnn"):
    """A fast log-mel CNN on raw audio, with SpeechMix mixing points.

    Not from the SpeechMix paper (which uses EnvNet-v2 only): a compact
    baseline for quick experiments and CPU training. The feature layer is
    inside the model, so the model (and its saved `.keras` file) takes raw
    waveforms `(batch, input_length)`:

    waveform -> `LevelNormalization` (each clip to -20 dBFS RMS) ->
    `LogMelSpectrogram` (25 ms Hann frames, 10 ms hop) ->
    batch norm per (mel bin, channel) -> optional `SpecAugment` -> per entry
    of `filters`: Conv2D 3x3 "same" (no bias) + batch norm + ReLU + max-pool
    2x2 -> global average pooling -> dropout -> Dense + softmax.

    With `pooling="flatten"` and `dense_units=(1024, 1024)` (and 60 bands
    every 23.2 ms: the network `speechmix train` uses by default,
    `keras_speechmix.training.experiment.NETWORKS["logmel_fc"]`) the last block's
    map is flattened instead and passes two fully connected layers, each
    dropout -> Dense (no bias) + batch norm + ReLU, before the final dropout
    and classifier: the large fully connected head of Piczak's CNN and
    EnvNet-v2 on this conv front. For 1 s at 16 kHz that is 7.5 M
    parameters (7.4 M in the head) for little extra compute, and the spare
    capacity that mixing regularises: trained plain, it fits its ESC-10
    training clips (100 %), which the small average-pooled head does not.

    One convolution per block keeps a training step cheap: with the defaults
    and a batch of 32 one-second clips at 16 kHz, a `fit` step took about
    0.07 s on two CPU cores (TF 2.17, Adam, best of 3 epochs of 16 steps)
    when compiled with `jit_compile=False`, but about 0.30 s with Keras'
    default `jit_compile="auto"`, which picks XLA; on a CPU, compile with
    `jit_compile=False`. Batch norms use momentum 0.9 (Keras' 0.99 leaves
    the moving statistics near their initial values in short runs on small
    sets).

    Mixing points (`HiddenMixup` layers named `mix_<point>`), always in
    network order whatever order `mix_points` gives:

    - "waveform": the raw input (input-space mixing of audio), with BC
      learning's gain-aware "sound" rule; all other points use `HiddenMixup`'s
      "auto" rule ("sound" when the plan carries gains, else "normal").
    - "input": the log-mel features, right after the feature layer, before
      normalization and SpecAugment (input-space mixing of features).
    - "block1", "block2", ...: after each conv block's pooling.
    - "pooled": the pooled embedding, just before dropout and the classifier
      (or the fully connected layers).
    - "dense1", "dense2", ...: after each fully connected layer's ReLU.

    Size with the defaults (16 kHz, 16,000 samples, so 101 frames of 64 mel
    bins; filters (32, 64, 128); 10 classes): 94,890 parameters (94,314
    trainable plus 576 batch-norm moving statistics) and 62.6 M MACs per
    clip in the convolutions and dense layer; the FFTs and mel projection
    add about 2.5 M.

    References:
        Jindal, Ranganathan Elavazhagan, Sawhney and Shah, "SpeechMix -
        Augmenting Deep Sound Recognition using Hidden Space
        Interpolations", Interspeech 2020.
        Tokozume, Ushiku and Harada, "Learning from Between-class Examples
        for Deep Sound Recognition", ICLR 2018.
        Park et al., "SpecAugment: A Simple Data Augmentation Method for
        Automatic Speech Recognition", Interspeech 2019.

    Args:
        num_classes: number of output classes (>= 2).
        sample_rate: sample rate of the input audio in Hz.
        input_length: samples per input clip.
        num_mel_bins: mel bands of the log-mel features.
        frame_step_ms: hop between feature frames (25 ms frames); the
            convolutions' cost grows with the number of frames.
        filters: output channels of each conv block; one block per entry,
            hence one "block<i>" mixing point per entry.
        mix_points: names of the mixing points to insert, a non-empty subset
            of "waveform", "input", "block1" ... "block<len(filters)>",
            "pooled", "dense1" ... "dense<len(dense_units)>", without
            duplicates. `None` (default) means "input",
            every block and "pooled" (with the default filters: "input",
            "block1", "block2", "block3", "pooled"), so the default follows
            `filters`.
        spec_augment: `False` for none, `True` for `SpecAugment()` with its
            defaults, or a dict of `SpecAugment` keyword arguments. It acts in
            training only.
        dropout: dropout rate before the classifier.
        hidden_gain: gains of the "sound" rule at hidden points (with
            `partner_batches(ratio="bc")`): `"plan"`, the input clips'
            waveform gains, or `"activation"`, measured from each activation
            as the SpeechMix authors' code does (`HiddenMixup(gain=...)`).
        pooling: `"average"` (global average pooling) or `"flatten"` (keep
            every position of the last block's map).
        dense_units: widths of fully connected layers between the pooling
            and the classifier (default none), each with a mixing point
            "dense<i>" after its ReLU.
        dense_dropout: dropout rate before each fully connected layer.
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
        ValueError: for an unknown or repeated mixing point name, or an
            invalid `num_classes`, `filters`, `dropout`, `pooling`,
            `dense_units` or `spec_augment`.

    Example:

    >>> import numpy as np
    >>> model = logmel_cnn(10, mix_points=("block2", "input"))
    >>> [layer.name for layer in model.layers if "mix" in layer.name]
    ['mix_input', 'mix_block2']
    >>> model.predict(np.zeros((2, 16000), "float32"), verbose=0).shape
    (2, 10)
    """
    _check_positive_int("num_classes", num_classes, 2)
    _check_positive_int("sample_rate", sample_rate)
    _check_positive_int("input_length", input_length)
    _check_positive_int("num_mel_bins", num_mel_bins)
    _check_dropout(dropout)
    _check_dropout(dense_dropout)
    if pooling not in ("average", "flatten"):
        raise ValueError("`pooling` must be 'average' or 'flatten'; received "
                         f"pooling={pooling!r}.")
    dense_units = tuple(dense_units)
    for value in dense_units:
        _check_positive_int("dense_units", value)
    filters = tuple(filters)
    if not filters:
        raise ValueError("`filters` must name at least one conv block; "
                         "received filters=().")
    for value in filters:
        _check_positive_int("filters", value)
    if isinstance(spec_augment, dict):
        augment_kwargs = dict(spec_augment)
    elif isinstance(spec_augment, bool):
        augment_kwargs = {} if spec_augment else None
    else:
        raise ValueError(
            "`spec_augment` must be True, False or a dict of SpecAugment "
            f"arguments; received spec_augment={spec_augment!r}."
        )

    candidates = _logmel_candidates(len(filters), len(dense_units))
    points = _check_points(mix_points, candidates, candidates[1:len(filters) + 3])

    mix = _mixer(points, hidden_gain=hidden_gain)

    inputs = keras.Input((input_length,), name="waveform")
    h = mix(inputs, "waveform")
    h = _level_layers(h, level_norm, random_clipping)
    h = LogMelSpectrogram(sample_rate=sample_rate, num_mel_bins=num_mel_bins,
                          frame_step_ms=frame_step_ms, name="logmel")(h)
    h = mix(h, "input")
    # Log-mel levels differ a lot between bands, so normalize each (mel bin,
    # channel) pair; Keras' batch norm takes a single axis, hence the reshape.
    frames, mels, channels = h.shape[1:]
    h = layers.Reshape((frames, mels * channels), name="bands")(h)
    h = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="input_norm")(h)
    h = layers.Reshape((frames, mels, channels), name="unbands")(h)
    if augment_kwargs is not None:
        # After the normalization, SpecAugment's zero fill is each band's
        # mean (as in the SpecAugment paper), not an arbitrary log level,
        # and the masks do not bias the batch statistics.
        h = SpecAugment(name="spec_augment", **augment_kwargs)(h)
    for block, width in enumerate(filters, start=1):
        h = _conv_bn_relu(h, f"block{block}_conv", width, (3, 3),
                          padding="same")
        h = layers.MaxPooling2D((2, 2), padding="same",
                                name=f"block{block}_pool")(h)
        h = mix(h, f"block{block}")
    if pooling == "flatten":
        h = layers.Flatten(name="pool")(h)
    else:
        h = layers.GlobalAveragePooling2D(name="pool")(h)
    h = mix(h, "pooled")
    for number, units in enumerate(dense_units, start=1):
        h = layers.Dropout(dense_dropout, name=f"dense{number}_dropout")(h)
        h = layers.Dense(units, use_bias=False, name=f"dense{number}")(h)
        h = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"dense{number}_bn")(h)
        h = layers.ReLU(name=f"dense{number}_relu")(h)
        h = mix(h, f"dense{number}")
    h = layers.Dropout(dropout, name="dropout")(h)
    h = layers.Dense(num_classes, name="classifier")(h)
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(h)
    return keras.Model(inputs, outputs, name=name)
