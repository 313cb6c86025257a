"""The default recipe: the methods, the reference networks and `RECIPE`.

What `speechmix train`, the main job and `benchmarks/accuracy.py` train
(through `experiment.train_clips`), kept free of TensorFlow so that a
backend-neutral benchmark (`benchmarks/speed.py --backend jax`,
`benchmarks/paper_scale.py`) builds exactly the networks the command does.

Example:

>>> from keras_speechmix.training import recipe
>>> recipe.RECIPE["model"], recipe.NETWORKS["logmel_fc"]["sample_rate"]
('logmel_fc', 16000)
"""

import keras

from keras_speechmix import models

__all__ = ["HIDDEN_GAINS", "METHODS", "MIXES", "NETWORKS", "RECIPE", "build_model",
           "method_points"]

# Each method's partner_batches arguments; alpha = 1.0 (r ~ U(0, 1)) unless
# given. Which mixing points each method uses depends on the network.
METHODS = {
    "none": None,
    "input": dict(per_sample=False, partners="random"),
    "bc": dict(ratio="bc", partners="different_class"),
    "manifold": dict(per_sample=False, partners="random", alpha=2.0),
    # SpeechMix mixes the waveform too (BC's rule, so the plan carries the
    # clips' gains), as the authors' point set does: on ESC-10 validation
    # splits it cut the error in noise to 0.69-0.74x plain training's, where
    # hidden points alone gave 0.85-0.93x (benchmarks/NOTES.md, turn 14).
    "speechmix": dict(ratio="bc", partners="different_class"),
}
MIXES = tuple(METHODS)

_LOGMEL_POINTS = {
    "input": ("input",),
    "bc": ("waveform",),
    "speechmix": ("waveform", "block1", "block2", "block3"),
    "manifold": ("input", "block1", "block2", "block3", "pooled"),
}


# Where the "sound" rule at a method's hidden points takes its gains
# (`HiddenMixup(gain=...)`); methods not named here mix hidden points
# linearly. Chosen on ESC-10 validation splits (benchmarks/NOTES.md, issue
# 18): the authors' form (activation gains, hidden points) against the
# earlier linear log-mel form, no resolved difference either way.
HIDDEN_GAINS = {"speechmix": "activation"}

# Builders: (num_classes, sample_rate, input_length, mix_points, dropout,
# hidden_gain, level_norm, random_clipping) -> model; `dropout=False` turns
# the network's dropout off (see RECIPE).


def _logmel_fc(num_classes, sample_rate, input_length, mix_points, dropout=True,
               hidden_gain="plan", level_norm=True, random_clipping=None):
    # Piczak's 60 bands and 23.2 ms hop (512 samples at 22,050 Hz): 2.5 times
    # fewer feature cells than 64 bands every 10 ms, for the same validation
    # error on ESC-10 (benchmarks/NOTES.md), so 2.5 times the epochs per hour.
    return models.logmel_cnn(num_classes, sample_rate=sample_rate,
                             input_length=input_length, mix_points=mix_points,
                             num_mel_bins=60, frame_step_ms=23.2,
                             pooling="flatten", dense_units=(1024, 1024),
                             dropout=0.3 if dropout else 0.0,
                             dense_dropout=0.5 if dropout else 0.0,
                             hidden_gain=hidden_gain, level_norm=level_norm,
                             random_clipping=random_clipping, name="logmel_fc")


def _logmel(num_classes, sample_rate, input_length, mix_points, dropout=True,
            hidden_gain="plan", level_norm=True, random_clipping=None):
    return models.logmel_cnn(num_classes, sample_rate=sample_rate,
                             input_length=input_length, mix_points=mix_points,
                             dropout=0.3 if dropout else 0.0, hidden_gain=hidden_gain,
                             level_norm=level_norm, random_clipping=random_clipping)


def _piczak(num_classes, sample_rate, input_length, mix_points, dropout=True,
            hidden_gain="plan", level_norm=True, random_clipping=None):
    return models.piczak_cnn(num_classes, sample_rate=sample_rate,
                             input_length=input_length, mix_points=mix_points,
                             dropout=0.5 if dropout else 0.0, hidden_gain=hidden_gain,
                             level_norm=level_norm, random_clipping=random_clipping)


def _envnet(num_classes, sample_rate, input_length, mix_points, dropout=True,
            hidden_gain="plan", level_norm=True, random_clipping=None):
    return models.envnet_v2(num_classes, input_length=input_length,
                            mix_points=mix_points, dropout=0.5 if dropout else 0.0,
                            hidden_gain=hidden_gain, level_norm=level_norm,
                            random_clipping=random_clipping)


def _adam(learning_rate, steps):
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, steps), alpha=0.01))


def _sgd(learning_rate, steps):
    # BC learning / SpeechMix: Nesterov SGD, LR / 10 at 50 % and 75 %.
    return keras.optimizers.SGD(
        keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(steps * 0.5), int(steps * 0.75)],
            [learning_rate, learning_rate * 0.1, learning_rate * 0.01]),
        momentum=0.9, nesterov=True, weight_decay=5e-4)


# The reference networks `speechmix train --model` offers: how to build each
# with a method's mixing points, its sample rate and training crop, and its
# optimiser (a function of the learning rate and the number of steps).
NETWORKS = {
    "logmel_fc": dict(build=_logmel_fc, points=_LOGMEL_POINTS, sample_rate=16000,
                      seconds=1.0, optimizer=_adam, learning_rate=2e-3),
    "logmel": dict(build=_logmel, points=_LOGMEL_POINTS, sample_rate=16000,
                   seconds=1.0, optimizer=_adam, learning_rate=2e-3),
    "piczak": dict(build=_piczak, sample_rate=22050, seconds=20480 / 22050,
                   points={"input": ("input",), "bc": ("waveform",),
                           "speechmix": ("waveform", "block1", "block2"),
                           "manifold": ("input", "block1", "block2", "fc1", "fc2")},
                   optimizer=_adam, learning_rate=1e-3),
    "envnet": dict(build=_envnet, sample_rate=44100, seconds=66650 / 44100,
                   points={"input": (0,), "bc": (0,), "speechmix": (0, 1, 2, 3, 4),
                           "manifold": (0, 1, 2, 3, 4)},
                   optimizer=_sgd, learning_rate=0.01),
}

# The default recipe of `speechmix train` and the main job, chosen on ESC-10
# validation splits (benchmarks/NOTES.md): the network; epochs of plain
# training; epochs when mixing (the authors double them); whether mixing
# keeps the network's dropout (it does not: mixing is the regulariser, and
# with dropout on top SpeechMix under-fitted); the share of the last mixing
# epochs trained clean ("mix off"); batch size; whether every clip's
# leading and trailing digital silence is cut before cropping (as BC
# learning and the SpeechMix authors prepare ESC); the share of the
# training clips held out (whole speakers or recordings) for the curves
# and the temperature (`calibration`); whether the network scales every
# clip to one RMS level after the waveform point (`LevelNormalization`,
# issue 27: the same answer at any recording level); and `None`, or the
# largest gain in dB by which `RandomClipping` makes half the training clips
# louder and clips them (off: on ESC-10 validation splits it left plain
# training's clipped error as it was and made SpeechMix's worse,
# benchmarks/NOTES.md turn 13).
# `speechmix train` with no flags runs exactly this, and so does
# benchmarks/accuracy.py (one path: `hold_out_validation`, `train_clips`).
RECIPE = dict(model="logmel_fc", epochs=100, mix_epochs=200, mix_dropout=False,
              mix_off=0.0, batch_size=32, trim_silence=True, validation=0.1,
              level_norm=True, random_clipping=None)


def _network(name):
    if name not in NETWORKS:
        raise ValueError(f"`model` must be one of {tuple(NETWORKS)}; received "
                         f"model={name!r}.")
    return NETWORKS[name]


def method_points(network, mix):
    """The mixing points `mix` uses in `network` (an entry of `NETWORKS`).

    Example:

    >>> method_points(NETWORKS["logmel_fc"], "speechmix")
    ('waveform', 'block1', 'block2', 'block3')
    """
    # METHODS, not its snapshot MIXES: a method added to METHODS (as
    # benchmarks/validate_recipe.py adds its variants) is a method here too.
    if mix not in METHODS:
        raise ValueError(f"`mix` must be one of {tuple(METHODS)}; received mix={mix!r}.")
    # Plain training builds the SpeechMix network: its points stay identities.
    return network["points"]["speechmix" if mix == "none" else mix]


def build_model(mix, num_classes, sample_rate, input_length, model=None):
    """The reference network `model` as the recipe trains it with method `mix`.

    Its mixing points and hidden gains are the method's (`HIDDEN_GAINS`);
    with a mixing method, its dropout is off unless `RECIPE["mix_dropout"]`.

    Example:

    >>> build_model("speechmix", 10, 16000, 16000).output_shape
    (None, 10)
    """
    network = _network(model or RECIPE["model"])
    dropout = mix == "none" or RECIPE["mix_dropout"]
    return network["build"](num_classes, sample_rate, input_length,
                            method_points(network, mix), dropout=dropout,
                            hidden_gain=HIDDEN_GAINS.get(mix, "plan"),
                            level_norm=RECIPE["level_norm"],
                            random_clipping=RECIPE["random_clipping"])
