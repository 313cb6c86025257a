"""EnvNet-v2: the raw-waveform network the SpeechMix authors used, with
their five candidate mixing points (0 = the input waveform, 1-4 = after
conv2 and the first three conv stages).
"""

import operator

import keras
from keras import layers

from keras_speechmix.models.blocks import (
    _check_dropout, _check_positive_int, _conv_bn_relu, _level_layers, _mixer)

__all__ = ["envnet_v2"]

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


def envnet_v2(num_classes, input_length=66650, mix_points=(0, 1, 2, 3, 4),
              dropout=0.5, hidden_gain="plan", level_norm=True,
              random_clipping=None, name="envnet_v2"):
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
    h = _level_layers(h, level_norm, random_clipping)
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
