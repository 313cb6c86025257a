"""Saved models: writing what `speechmix train` saves, and using it.

A model saved here is a plain `.keras` file (`keras.models.load_model`
reads it once `keras_speechmix` is imported, which registers the package's
layers) that takes raw mono waveforms of one length at one sample rate and
gives class probabilities. Its metadata (the `keras_speechmix` entry of the
file's `metadata.json`) records that length, the rate and the class names,
so that `predict_clips` can score clips of any length and `speechmix
evaluate` can check a data set against the model.

Example:

>>> import keras_speechmix as ksm  # doctest: +SKIP
>>> model = ksm.load_model("run/model.keras")  # doctest: +SKIP
>>> info = ksm.model_info("run/model.keras")  # doctest: +SKIP
>>> probabilities = ksm.predict_clips(model, waves)  # doctest: +SKIP
>>> [info["class_names"][k] for k in probabilities.argmax(axis=1)]  # doctest: +SKIP
"""

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["clip_windows", "load_model", "model_info", "predict_clips", "save_model"]

_KEY = "keras_speechmix"


def _check_model_path(path):
    """`path` as a `Path` when it is a readable `.keras` file; else a clear error."""
    path = Path(os.fspath(path)).expanduser()
    if path.is_dir():
        inside = path / "model.keras"
        hint = (f": did you mean {inside}?" if inside.is_file()
                else " (expected a .keras file written by model.save or speechmix train)")
        raise IsADirectoryError(f"{path} is a folder, not a model file{hint}")
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a Keras model file: a .keras file is a zip archive "
            "written by model.save (or speechmix train)")
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise ValueError(f"{path} is a zip archive but not a Keras model file "
                             "(it has no config.json)")
    return path


def save_model(model, path, *, sample_rate, class_names, input_length=None, **extra):
    """Saves `model` as a `.keras` file whose metadata says how to feed it.

    The metadata (`model_info`) holds `sample_rate`, `input_length`
    (default: the model's input length), `class_names` in output order, and
    any `extra` JSON-serialisable values (the training command writes the
    network, the mixing method and the epochs).

    Example:

    >>> import keras, os, tempfile
    >>> model = keras.Sequential([keras.Input((800,)), keras.layers.Dense(2)])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.keras")
    >>> save_model(model, path, sample_rate=8000, class_names=["no", "yes"])
    >>> model_info(path)["input_length"]
    800
    """
    if len(class_names) != model.output_shape[-1]:
        raise ValueError(f"save_model: {len(class_names)} class names for a model with "
                         f"{model.output_shape[-1]} outputs")
    info = {"sample_rate": int(sample_rate),
            "input_length": int(input_length or model.input_shape[1]),
            "class_names": [str(name) for name in class_names], **extra}
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        plain = Path(scratch) / "plain.keras"
        model.save(plain)
        # Keras writes metadata.json and ignores keys it does not know: the
        # file stays loadable by keras.models.load_model as it is.
        written = Path(scratch) / "model.keras"
        with zipfile.ZipFile(plain) as source, zipfile.ZipFile(written, "w") as target:
            for item in source.infolist():
                data = source.read(item)
                if item.filename == "metadata.json":
                    metadata = json.loads(data)
                    metadata[_KEY] = info
                    data = json.dumps(metadata, indent=1)
                target.writestr(item, data)
        os.replace(written, path)


def model_info(path):
    """What a model saved by `save_model` takes and predicts.

    Returns:
        A dict with `sample_rate` (Hz), `input_length` (samples),
        `class_names` (in the order of the model's outputs) and what the
        training run recorded; `{}` for a `.keras` file saved otherwise.

    Raises:
        FileNotFoundError, IsADirectoryError, ValueError: `path` is missing,
            a folder (the message names `FOLDER/model.keras` when it holds
            one) or not a Keras model file.

    Example:

    >>> model_info("run/model.keras")["class_names"]  # doctest: +SKIP
    ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']
    """
    path = _check_model_path(path)
    with zipfile.ZipFile(path) as archive:
        try:
            metadata = json.loads(archive.read("metadata.json"))
        except KeyError:
            return {}
    return dict(metadata.get(_KEY, {}))


def load_model(path, compile=False):
    """Loads a `.keras` model file, with a clear error when `path` is not one.

    The same as `keras.models.load_model` (importing `keras_speechmix`
    registers its layers for that too), but `compile` defaults to `False`
    (for prediction) and a wrong path names what is wrong: a missing file,
    a folder (`did you mean FOLDER/model.keras?`) or a file that is not a
    Keras model.

    Example:

    >>> import keras, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(
    ...     os.path.join(folder, "model.keras"))
    >>> try:
    ...     load_model(folder)
    ... except IsADirectoryError as error:
    ...     print(str(error).endswith("did you mean " + os.path.join(folder, "model.keras") + "?"))
    True
    """
    import keras

    import keras_speechmix.audio.clipping  # noqa: F401 - registers RandomClipping
    import keras_speechmix.audio.features  # noqa: F401 - registers the feature layers
    import keras_speechmix.audio.level  # noqa: F401 - registers LevelNormalization
    import keras_speechmix.calibration  # noqa: F401 - registers TemperatureScaling
    import keras_speechmix.layer  # noqa: F401 - registers HiddenMixup

    return keras.models.load_model(_check_model_path(path), compile=compile)


def predict_clips(model, clips, length=None, crops=10, batch_size=64):
    """Class probabilities of clips of any length, averaged over windows.

    A saved model takes one input length (`model_info(path)["input_length"]`,
    the model's `input_shape[1]`). Clips no longer than it are zero-padded at
    the end and predicted once; longer ones are cut into `crops` evenly
    spaced windows from start to end (the first at the start, the last at
    the end), whose probabilities are averaged, as BC learning tests.

    Args:
        model: a Keras model on waveforms `(batch, length)`, e.g. from
            `load_model`.
        clips: mono waveforms (1-D arrays) at the model's sample rate.
        length: the model's input length (default: `model.input_shape[1]`).
        crops: windows per clip longer than `length`.
        batch_size: windows per prediction batch.

    Returns:
        `(len(clips), classes)` float array.

    Raises:
        ValueError: a clip is not 1-D, is empty, or holds NaN or infinite
            samples (the message gives its index).

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((100,)), keras.layers.Dense(3),
    ...                           keras.layers.Softmax()])
    >>> predict_clips(model, [np.zeros(40), np.zeros(1000)]).shape
    (2, 3)
    >>> predict_clips(model, [np.zeros(40), np.zeros(0)])
    Traceback (most recent call last):
    ...
    ValueError: predict_clips: clip 1 is empty (0 samples): there is no audio to score
    """
    length = int(length or model.input_shape[1])
    windows, owner = clip_windows(clips, length, crops, caller="predict_clips")
    probabilities = model.predict(windows, batch_size=batch_size, verbose=0)
    return np.stack([probabilities[owner == k].mean(axis=0) for k in range(len(clips))])


def clip_windows(clips, length, crops=10, caller="clip_windows"):
    """The windows `predict_clips` scores: `(windows, owner)`.

    `windows` is `(total, length)` float32, `owner[i]` the clip window `i`
    comes from: a clip no longer than `length` is zero-padded to one window,
    a longer one gives `crops` evenly spaced windows. Calibration fits its
    temperature on these windows, the model's own unit of input.

    Example:

    >>> import numpy as np
    >>> windows, owner = clip_windows([np.ones(40), np.ones(1000)], 100, crops=3)
    >>> windows.shape, owner.tolist()
    ((4, 100), [0, 1, 1, 1])
    """
    if not isinstance(crops, (int, np.integer)) or crops < 1:
        raise ValueError(f"{caller}: crops must be a positive int; got {crops!r}")
    if not len(clips):
        raise ValueError(f"{caller}: no clips given")
    windows, owner = [], []
    for number, wave in enumerate(clips):
        wave = np.asarray(wave, np.float32)
        if wave.ndim != 1:
            raise ValueError(f"{caller}: clip {number} has shape {wave.shape}; "
                             "expected a mono waveform (samples,)")
        # Zero padding would turn either into a confident answer about nothing.
        if not wave.size:
            raise ValueError(f"{caller}: clip {number} is empty (0 samples): "
                             "there is no audio to score")
        bad = wave.size - np.count_nonzero(np.isfinite(wave))
        if bad:
            raise ValueError(f"{caller}: clip {number} has {bad} NaN or infinite "
                             f"sample{'s' if bad > 1 else ''} of {wave.size}: the "
                             "network's output would be meaningless")
        if len(wave) <= length:
            pieces = np.pad(wave, (0, length - len(wave)))[None]
        else:
            starts = np.round(np.linspace(0, len(wave) - length, crops)).astype(int)
            pieces = np.lib.stride_tricks.sliding_window_view(wave, length)[starts]
        windows.append(pieces)
        owner.extend([number] * len(pieces))
    return np.concatenate(windows), np.asarray(owner)


def feature_sample_rate(model):
    """The sample rate a model's feature layer was built for, or `None`.

    Looks through the model's layers, nested models and layers included, for
    this package's `LogMelSpectrogram` (`sample_rate`) or Keras'
    `MelSpectrogram` (`sampling_rate`): a model saved from Python without
    `save_model`'s metadata still says through them what rate it takes.

    Raises:
        ValueError: the model holds feature layers built for different rates.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((8000,)),
    ...                           keras.layers.MelSpectrogram(sampling_rate=8000)])
    >>> feature_sample_rate(model)
    8000
    """
    import keras

    from keras_speechmix.audio.features import LogMelSpectrogram

    rates = {}
    # `_flatten_layers` reaches layers held by custom layers too, which
    # `.layers` does not (a LogMelSpectrogram inside a user's own front end).
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, LogMelSpectrogram):
            rates.setdefault(int(layer.sample_rate), layer.name)
        elif isinstance(layer, keras.layers.MelSpectrogram):
            rates.setdefault(int(layer.sampling_rate), layer.name)
    if len(rates) > 1:
        found = ", ".join(f"'{name}' {rate} Hz" for rate, name in rates.items())
        raise ValueError(f"model '{model.name}' holds feature layers built for different "
                         f"sample rates ({found})")
    return next(iter(rates), None)
