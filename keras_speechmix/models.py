"""Reference networks with SpeechMix mixing points built in.

`envnet_v2` is the raw-waveform network the SpeechMix authors used, with
their five candidate mixing points; `logmel_cnn` is a small log-mel CNN that
trains quickly on a CPU. Both return a plain functional `keras.Model` whose
`HiddenMixup` layers are the identity until the training view
`keras_speechmix.SpeechMix(model)` activates one of them, so the same model
is trained, evaluated, saved and served without change.

Both models end in a softmax: `model.predict` gives class probabilities and
the matching loss is `keras.losses.CategoricalCrossentropy()` (the default
`from_logits=False`) on the (mixed) one-hot targets. With soft targets this
differs from the authors' KL-divergence loss only by the targets' entropy, a
constant, so the gradients are the same.
"""

import operator

import keras
from keras import layers

from keras_speechmix.features import LogMelSpectrogram, SpecAugment
from keras_speechmix.layer import HiddenMixup

__all__ = ["envnet_v2", "logmel_cnn", "piczak_cnn"]

# Chainer's BatchNormalization (used by BC learning and SpeechMix) keeps moving
# statistics with decay 0.9. Keras' default 0.99 barely moves them in short
# runs on small sets, which makes inference-mode accuracy collapse.
_BN_MOMENTUM = 0.9

# EnvNet-v2 layout, from mil-tokyo/bc_learning_sound `models/envnetv2.py`
# (identical in midas-research/speechmix): (name, filters, kernel, strides).
_ENVNET_FRONT = (("conv1", 32, (1, 64), (1, 2)), ("conv2", 64, (1, 16), (1, 2)))
_ENVNET_STAGES = (
    # (convs, pool size) after the axis swap; a mixing point follows each of
    # the first three stages (points 2, 3, 4).
    ((("conv3", 32, (8, 8)), ("conv4", 32, (8, 8))), (5, 3)),
    ((("conv5", 64, (1, 4)), ("conv6", 64, (1, 4))), (1, 2)),
    ((("conv7", 128, (1, 2)), ("conv8", 128, (1, 2))), (1, 2)),
    ((("conv9", 256, (1, 2)), ("conv10", 256, (1, 2))), (1, 2)),
)
_ENVNET_POINTS = (0, 1, 2, 3, 4)


def _check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; received "
            f"{name}={value!r}."
        )


def _check_dropout(dropout):
    if (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
            or not 0.0 <= dropout < 1.0):
        raise ValueError(
            f"`dropout` must be a rate in [0, 1); received dropout={dropout!r}."
        )


def _envnet_width(input_length):
    """Width (time axis) of conv10's pooled output, or 0 if it vanishes.

    Mirrors the Chainer arithmetic: "valid" convolutions and max-pooling with
    Chainer's default `cover_all=True`, i.e. ceil(width / pool).
    """
    width = input_length
    for _, _, kernel, strides in _ENVNET_FRONT:
        width = (width - kernel[1]) // strides[1] + 1
        if width < 1:
            return 0
    width = -(-width // 64)
    for convs, pool in _ENVNET_STAGES:
        width -= sum(kernel[1] - 1 for _, _, kernel in convs)
        if width < 1:
            return 0
        width = -(-width // pool[1])
    return width


def _envnet_min_length():
    low, high = 1, 1 << 20
    while low < high:  # the width is non-decreasing in the input length
        mid = (low + high) // 2
        if _envnet_width(mid) >= 1:
            high = mid
        else:
            low = mid + 1
    return low


def _check_envnet_points(mix_points):
    given = mix_points
    if isinstance(mix_points, (str, bytes)) or not hasattr(mix_points, "__iter__"):
        mix_points = (mix_points,)
    points = []
    for point in mix_points:
        try:
            if isinstance(point, bool):
                raise TypeError
            point = operator.index(point)
        except TypeError:
            point = None
        if point not in _ENVNET_POINTS:
            raise ValueError(
                "`mix_points` must be a non-empty subset of "
                f"{_ENVNET_POINTS} (0 = input waveform, 1-4 = after conv2, "
                f"conv4, conv6, conv8); received mix_points={given!r}."
            )
        points.append(point)
    if not points or len(set(points)) != len(points):
        raise ValueError(
            "`mix_points` must be a non-empty subset of "
            f"{_ENVNET_POINTS} without duplicates; received "
            f"mix_points={given!r}."
        )
    return frozenset(points)


def _chainer_max_pool(h, pool_size, name):
    # Chainer pools with cover_all=True, keeping a partial last window that
    # Keras' "valid" pooling drops. The inputs here are ReLU outputs (>= 0), so
    # zero-padding the tail is the same as Chainer's -inf padding.
    pad_h = -h.shape[1] % pool_size[0]
    pad_w = -h.shape[2] % pool_size[1]
    if pad_h or pad_w:
        h = layers.ZeroPadding2D(((0, pad_h), (0, pad_w)),
                                 name=f"{name}_cover_all")(h)
    return layers.MaxPooling2D(pool_size, name=name)(h)


def _conv_bn_relu(h, name, filters, kernel, strides=(1, 1), padding="valid",
                  kernel_initializer="he_normal", epsilon=1e-3):
    # No bias: the batch norm's beta takes its place (Chainer's ConvBNReLU
    # uses nobias=True).
    h = layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                      use_bias=False, kernel_initializer=kernel_initializer,
                      name=name)(h)
    h = layers.BatchNormalization(momentum=_BN_MOMENTUM, epsilon=epsilon,
                                  name=f"{name}_bn")(h)
    return layers.ReLU(name=f"{name}_relu")(h)


def envnet_v2(num_classes, input_length=66650, mix_points=(0, 1, 2, 3, 4),
              dropout=0.5, hidden_gain="plan", name="envnet_v2"):
    """EnvNet-v2 on raw waveforms, with SpeechMix's candidate mixing points.

    The network of Tokozume et al. (2018), layer for layer as in
    mil-tokyo/bc_learning_sound `models/envnetv2.py`, which the SpeechMix
    authors (midas-research/speechmix) reuse unchanged apart from mixing:

    - conv1: 32 filters, kernel (1, 64), stride (1, 2); conv2: 64, (1, 16),
      stride (1, 2); max-pool (1, 64); swap of the channel and height axes
      (Chainer's `swapaxes(1, 2)` on NCHW; here `Permute((3, 2, 1))` on NHWC),
      so the 64 filters become a 64-high, 1-channel "image".
    - conv3, conv4: 32, (8, 8); max-pool (5, 3).
    - conv5, conv6: 64, (1, 4); max-pool (1, 2).
    - conv7, conv8: 128, (1, 2); max-pool (1, 2).
    - conv9, conv10: 256, (1, 2); max-pool (1, 2).
    - fc11, fc12: 4096 + ReLU + dropout; fc13: `num_classes` + softmax.

    Every convolution is "valid", has no bias and is followed by batch norm
    and ReLU (Chainer's `ConvBNReLU`). As in Chainer: He-normal convolution
    kernels, LeCun-normal dense kernels, batch-norm decay 0.9 and epsilon
    2e-5, and max-pooling that keeps a partial last window
    (`cover_all=True`), which only matters for input lengths other than
    66,650. At 66,650 samples conv10's pooled output is 10 x 8 x 256, the
    original's `fc11` input size of 256 * 10 * 8.

    Mixing points (`HiddenMixup` layers named `mix_0` ... `mix_4`), as in the
    authors' code: 0 = the input waveform, 1 = after conv1-conv2 + pool + axis
    swap, 2 = after conv3-conv4 + pool (5, 3), 3 = after conv5-conv6 + pool,
    4 = after conv7-conv8 + pool. They never mix after conv9-conv10 or the
    dense layers. Their canonical run draws among points 1-4. Point 0 uses
    BC learning's gain-aware "sound" rule, as the authors always do at the
    input (equal gains unless the plan carries them); the others use
    `HiddenMixup`'s "auto" rule ("sound" when the plan carries gains,
    otherwise "normal").

    Size (parameters from `model.count_params()`, 10 classes; multiply-
    accumulates (MACs) for one clip summed over the convolutions and dense
    layers, by a small script over the built layers' shapes):

    - 66,650 samples (1.51 s at 44.1 kHz, the authors' setting): 101,089,418
      parameters (101,087,306 trainable plus 2,112 batch-norm moving
      statistics), 100.7 M of them in fc11-fc13; 1.62 G MACs per clip, of
      which conv2 takes 0.55 G and conv4 0.81 G.
    - 24,000 samples (1.5 s at 16 kHz): 38,174,858 parameters (fc11 shrinks
      to 5,120 inputs), 0.55 G MACs per clip.

    The shortest input that leaves conv10 one time step is 17,502 samples;
    1 s at 16 kHz (16,000 samples) is too short and raises a `ValueError`.

    The training recipe (Nesterov SGD with momentum 0.9, weight decay 5e-4,
    batch 32, learning rate 0.01 divided by 10 at 50 % and 75 % of training,
    waveforms scaled to [-1, 1]) belongs to the optimizer and data pipeline,
    not to this function.

    References:
        Tokozume, Ushiku and Harada, "Learning from Between-class Examples
        for Deep Sound Recognition", ICLR 2018.
        Jindal, Ranganathan Elavazhagan, Sawhney and Shah, "SpeechMix -
        Augmenting Deep Sound Recognition using Hidden Space
        Interpolations", Interspeech 2020.

    Args:
        num_classes: number of output classes (>= 2).
        input_length: samples per input clip; at least 17,502. The authors
            use 66,650 at 44.1 kHz.
        mix_points: which candidate mixing points (a non-empty subset of
            0-4, no duplicates) get a `HiddenMixup` layer. They are always
            inserted in network order; the training view numbers them in
            that order, so with `mix_points=(2, 4)` its point 0 is after
            conv4 and its point 1 after conv8.
        dropout: dropout rate after fc11 and fc12.
        hidden_gain: gains of the "sound" rule at hidden points (with
            `partner_batches(ratio="bc")`): `"plan"`, the input clips'
            waveform gains, or `"activation"`, measured from each activation
            as the SpeechMix authors' code does (`HiddenMixup(gain=...)`).
        name: model name.

    Returns:
        A functional `keras.Model` mapping waveforms `(batch, input_length)`
        to class probabilities `(batch, num_classes)`.

    Raises:
        ValueError: for an invalid `mix_points`, `num_classes`, `dropout`, or
            an `input_length` too short for the pooling stack.

    Example:

    >>> model = envnet_v2(10, input_length=24000, mix_points=(1, 2, 3, 4))
    >>> [layer.name for layer in model.layers if "mix" in layer.name]
    ['mix_1', 'mix_2', 'mix_3', 'mix_4']
    >>> model.output_shape
    (None, 10)
    """
    _check_positive_int("num_classes", num_classes, 2)
    _check_positive_int("input_length", input_length)
    _check_dropout(dropout)
    points = _check_envnet_points(mix_points)
    if _envnet_width(input_length) < 1:
        raise ValueError(
            f"`input_length`={input_length} is too short for EnvNet-v2: its "
            "valid convolutions and pooling leave no time steps before fc11. "
            f"Use input_length >= {_envnet_min_length()} samples (the "
            "authors use 66650 at 44.1 kHz)."
        )

    # Chainer's defaults: HeNormal for ConvBNReLU, LeCunNormal for Linear,
    # both untruncated; BatchNormalization eps 2e-5.
    conv_init = keras.initializers.VarianceScaling(
        2.0, "fan_in", "untruncated_normal")
    dense_init = keras.initializers.VarianceScaling(
        1.0, "fan_in", "untruncated_normal")
    epsilon = 2e-5

    mix = _mixer(points, waveform_point=0, hidden_gain=hidden_gain)

    inputs = keras.Input((input_length,), name="waveform")
    h = mix(inputs, 0)
    h = layers.Reshape((1, input_length, 1), name="to_image")(h)
    for conv_name, filters, kernel, strides in _ENVNET_FRONT:
        h = _conv_bn_relu(h, conv_name, filters, kernel, strides,
                          kernel_initializer=conv_init, epsilon=epsilon)
    h = _chainer_max_pool(h, (1, 64), "pool2")
    # (1, time, filters) -> (filters, time, 1): the filters become the height
    # that conv3/conv4's 8x8 kernels slide over.
    h = layers.Permute((3, 2, 1), name="swap_axes")(h)
    h = mix(h, 1)
    for stage, (convs, pool) in enumerate(_ENVNET_STAGES, start=2):
        for conv_name, filters, kernel in convs:
            h = _conv_bn_relu(h, conv_name, filters, kernel,
                              kernel_initializer=conv_init, epsilon=epsilon)
        h = _chainer_max_pool(h, pool, f"pool{convs[-1][0][4:]}")
        h = mix(h, stage)
    # Chainer flattens NCHW, Keras NHWC: a fixed permutation of fc11's inputs,
    # so the function class is the same.
    h = layers.Flatten(name="flatten")(h)
    for fc in ("fc11", "fc12"):
        h = layers.Dense(4096, activation="relu", kernel_initializer=dense_init,
                         name=fc)(h)
        h = layers.Dropout(dropout, name=f"{fc}_dropout")(h)
    h = layers.Dense(num_classes, kernel_initializer=dense_init, name="fc13")(h)
    # float32 so that the softmax stays stable under mixed precision.
    outputs = layers.Activation("softmax", dtype="float32", name="softmax")(h)
    return keras.Model(inputs, outputs, name=name)


def _logmel_candidates(num_blocks, num_dense=0):
    return ("waveform", "input",
            *(f"block{i}" for i in range(1, num_blocks + 1)), "pooled",
            *(f"dense{i}" for i in range(1, num_dense + 1)))


def logmel_cnn(num_classes, sample_rate=16000, input_length=16000,
               num_mel_bins=64, frame_step_ms=10.0, filters=(32, 64, 128),
               mix_points=None, spec_augment=False, dropout=0.3,
               pooling="average", dense_units=(), dense_dropout=0.5,
               hidden_gain="plan", name="logmel_cnn"):
    """A fast log-mel CNN on raw audio, with SpeechMix mixing points.

    Not from the SpeechMix paper (which uses EnvNet-v2 only): a compact
    baseline for quick experiments and CPU training. The feature layer is
    inside the model, so the model (and its saved `.keras` file) takes raw
    waveforms `(batch, input_length)`:

    waveform -> `LogMelSpectrogram` (25 ms Hann frames, 10 ms hop) ->
    batch norm per (mel bin, channel) -> optional `SpecAugment` -> per entry
    of `filters`: Conv2D 3x3 "same" (no bias) + batch norm + ReLU + max-pool
    2x2 -> global average pooling -> dropout -> Dense + softmax.

    With `pooling="flatten"` and `dense_units=(1024, 1024)` (and 60 bands
    every 23.2 ms: the network `speechmix train` uses by default,
    `keras_speechmix.experiment.NETWORKS["logmel_fc"]`) the last block's
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


_PICZAK_CANDIDATES = ("waveform", "input", "block1", "block2", "fc1", "fc2")
_PICZAK_DEFAULT_POINTS = ("input", "block1", "block2")


def _mixer(points, waveform_point="waveform", hidden_gain="plan"):
    """`mix(h, point)`: `h` through a HiddenMixup if `point` is chosen, else `h`.

    The authors always mix waveforms with BC's gain-aware rule ("sound");
    hidden points follow the plan ("sound" with gains, else "normal"), with
    the gains of `hidden_gain` (`HiddenMixup(gain=...)`: the input clips'
    from the plan, or measured from the activation as the authors do).
    """
    if hidden_gain not in ("plan", "activation"):
        raise ValueError("`hidden_gain` must be 'plan' or 'activation'; received "
                         f"hidden_gain={hidden_gain!r}.")

    def mix(h, point):
        if point not in points:
            return h
        if point == waveform_point:
            return HiddenMixup(rule="sound", name=f"mix_{point}")(h)
        # Gains measured from the activation need none in the plan: the
        # sound rule then applies whatever the plan carries.
        rule = "sound" if hidden_gain == "activation" else "auto"
        return HiddenMixup(rule=rule, gain=hidden_gain, name=f"mix_{point}")(h)

    return mix


def _check_points(mix_points, candidates, default):
    if mix_points is None:
        mix_points = default
    if isinstance(mix_points, str):
        mix_points = (mix_points,)
    try:
        mix_points = tuple(mix_points)
    except TypeError:
        mix_points = (mix_points,)
    unknown = [p for p in mix_points if p not in candidates]
    if unknown or not mix_points or len(set(mix_points)) != len(mix_points):
        raise ValueError(
            "`mix_points` must be a non-empty collection of distinct names "
            f"from {candidates}; received mix_points={mix_points!r}"
            + (f" (unknown: {unknown})." if unknown else ".")
        )
    return frozenset(mix_points)


def piczak_cnn(num_classes, sample_rate=22050, input_length=20480,
               num_mel_bins=60, hidden_units=5000, dropout=0.5,
               mix_points=None, hidden_gain="plan", name="piczak_cnn"):
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
    probabilities of its segments (`keras_speechmix.experiment.predict_clips`
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
