"""Audio decoding and waveform utilities.

Files are decoded by soundfile (libsndfile: WAV in every layout it reads,
including WAVE_FORMAT_EXTENSIBLE and any channel count, FLAC, Ogg
Vorbis/Opus, MP3, AIFF, ...) and resampled by soxr (the SoX resampler,
"HQ" quality). Both are plain wheels with their native libraries inside.
Inside a graph (`tf.data.Dataset.map`, `tf.function`), `decode_audio` and
`resample` run the same code through `tf.numpy_function`, so they need a
Python interpreter (no SavedModel export of the decoding step).

tensorflow-io is not needed. `tensorflow_io()` returns it when it is
installed and works beside the installed TensorFlow, and raises an
`ImportError` naming both versions and the fix when it is installed but
its native ops do not load.

Waveforms are float32 with shape `(samples, channels)` as decoded (integer
samples scaled to [-1, 1): int16 / 32768, 24- and 32-bit likewise, 8-bit
unsigned around 128), or `(samples,)` once mono.
"""

import functools
import importlib
import importlib.metadata
import importlib.util
import io

import numpy as np
import soundfile
import soxr  # noqa: F401  (its version is reported beside soundfile's)
import tensorflow as tf

# The resampler and the truncation log pattern are shared with the
# TensorFlow-free segment reader (training crops read by seeking).
from keras_speechmix.audio.segments import SHORT_CHUNK as _SHORT_CHUNK
from keras_speechmix.audio.segments import resample_array as _resample_array

__all__ = [
    "HAVE_TFIO",
    "AudioDecodeError",
    "decode_audio",
    "load_audio",
    "to_mono",
    "resample",
    "fix_length",
    "sound_crop",
    "training_crop",
    "multi_crop",
    "normalize",
    "tensorflow_io",
]

PIN_HINT = (
    "keras_speechmix does not need tensorflow-io: uninstall it "
    "(pip uninstall tensorflow-io), or install the pair it was built for: "
    'pip install "tensorflow==2.17.1" "tensorflow-io==0.37.1" '
    "(what keras_speechmix[tfio] installs)"
)

FORMATS = ("wav", "flac", "ogg", "mp3")
_FORMAT_ALIASES = {"wave": "wav", "vorbis": "ogg", "opus": "ogg", "oga": "ogg"}
# libsndfile's major formats behind each name `decode_audio` accepts.
_MAJOR = {"wav": {"WAV", "WAVEX", "RF64", "W64"}, "flac": {"FLAC"}, "ogg": {"OGG"},
          "mp3": {"MP3", "MPEG"}}
_NAMES = {"WAV": "WAV", "WAVEX": "WAV", "RF64": "WAV", "W64": "WAV", "FLAC": "FLAC",
          "OGG": "Ogg", "MP3": "MP3", "MPEG": "MP3"}
# Magic bytes, only to word errors for data libsndfile refuses.
_MAGIC = ((b"RIFF", "WAV"), (b"RF64", "WAV"), (b"fLaC", "FLAC"), (b"OggS", "Ogg"),
          (b"ID3", "MP3"), (b"FORM", "AIFF"))
_EXPECTED = "expected WAV, FLAC, Ogg Vorbis/Opus or MP3"
_PLACEHOLDER_SIZES = (0, 0xFFFFFFFF)  # streamed WAVs leave the size unset


class AudioDecodeError(ValueError):
    """An audio file could not be turned into a usable waveform.

    Args:
        path: The file concerned (or `None` for in-memory data).
        reason: What went wrong, in words.

    Example:

    >>> err = AudioDecodeError("a.wav", "file is empty (0 bytes)")
    >>> str(err)
    'a.wav: file is empty (0 bytes)'
    """

    def __init__(self, path, reason):
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(reason if path is None else f"{path}: {reason}")


# ---------------------------------------------------------------------------
# tensorflow-io (optional, unused by the package itself)


def _package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _broken_tfio_error(cause):
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return ImportError(
        "tensorflow-io is installed but its native ops do not work with the "
        f"installed TensorFlow (tensorflow {tf.__version__}, tensorflow-io "
        f"{_package_version('tensorflow-io')}): {type(cause).__name__}: {first}. "
        f"tensorflow-io 0.37.1 is built for TensorFlow 2.17 only. {PIN_HINT}"
    )


def _resample_op(tfio):
    # The raw op takes (samples, channels); tfio.audio.resample wraps it in
    # tf.case + tf.vectorized_map.
    try:
        from tensorflow_io.python.ops import core_ops

        return core_ops.io_audio_resample
    except ImportError:  # pragma: no cover - layout change in tensorflow-io
        return tfio.audio.resample


def _probe_tfio(import_module=importlib.import_module):
    """Returns the tensorflow_io module, or None when it is not installed.

    Raises ImportError when it is installed but unusable. tensorflow-io loads
    its shared library lazily, so a successful import proves nothing: a tiny
    eager resample forces the library to load and an op to run.
    """
    try:
        tfio = import_module("tensorflow_io")
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "tensorflow_io":
            return None
        raise _broken_tfio_error(e) from e
    except Exception as e:  # undefined symbols surface as OSError/ImportError
        raise _broken_tfio_error(e) from e
    try:
        with tf.init_scope():
            out = _resample_op(tfio)(tf.zeros([16, 1], tf.float32), rate_in=8000, rate_out=16000)
            if int(tf.shape(out)[0]) <= 0:
                raise RuntimeError("resample returned no samples")
    except Exception as e:
        raise _broken_tfio_error(e) from e
    return tfio


# Installed, which says nothing about whether it works: see tensorflow_io().
HAVE_TFIO = importlib.util.find_spec("tensorflow_io") is not None


@functools.lru_cache(maxsize=1)
def tensorflow_io():
    """The `tensorflow_io` module if it is installed and works, else `None`.

    keras_speechmix decodes with soundfile and resamples with soxr, so it
    never needs tensorflow-io. This is for pipelines that mix in its ops:
    it imports tensorflow-io and runs one tiny op, because its native
    library only fails to load when an op first runs (deep inside a graph,
    as a `NotImplementedError`).

    Returns:
        The module, or `None` when tensorflow-io is not installed.

    Raises:
        ImportError: tensorflow-io is installed but does not work beside the
            installed TensorFlow; the message names both versions and the fix.

    Example:

    >>> tfio = tensorflow_io()  # None without tensorflow-io
    """
    return _probe_tfio()


# ---------------------------------------------------------------------------
# Decoding


def _format_name(file_format):
    name = str(file_format).lower().lstrip(".")
    name = _FORMAT_ALIASES.get(name, name)
    if name not in FORMATS:
        raise ValueError(
            f"Unknown file_format={file_format!r}; expected one of {FORMATS} "
            "or None to detect it from the data"
        )
    return name


def _container(data):
    """What the magic bytes claim the data is (for error messages only)."""
    # No MPEG frame sync here: 11 bits turn up in random bytes too.
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return None


def _ogg_unfinished(data):
    # An Ogg stream ends with a page flagged end-of-stream (header type bit
    # 0x04); a cut file ends before it.
    last = data.rfind(b"OggS")
    return last < 0 or len(data) < last + 27 or not data[last + 5] & 0x04


def _riff_short(data):
    """(promised, present) bytes when a RIFF header promises more than exists."""
    if len(data) < 8 or data[:4] != b"RIFF":
        return None
    promised = int.from_bytes(data[4:8], "little")
    if promised in _PLACEHOLDER_SIZES or promised <= len(data) - 8:
        return None
    return promised, len(data) - 8


def _refused(data, message):
    """The reason for data libsndfile would not open."""
    container = _container(data)
    message = message.split(": ", 1)[-1] if message.startswith("Error opening") else message
    if container is None:
        return (f"not an audio file (it starts with {data[:8]!r}; libsndfile: "
                f"{message}); {_EXPECTED}")
    if container == "WAV" and _riff_short(data):
        promised, present = _riff_short(data)
        return (f"truncated: the WAV header promises {promised} bytes after it, the file "
                f"holds {present} (could not decode as WAV: {message})")
    if container == "Ogg" and _ogg_unfinished(data):
        return (f"truncated: the Ogg stream stops before its last page "
                f"(could not decode as Ogg: {message})")
    return f"could not decode as {container}: {message}"


def _decode_bytes(data, path=None, file_format=None):
    """`(samples, channels)` float32 and the rate; AudioDecodeError if unusable."""
    if not data:
        raise AudioDecodeError(path, "file is empty (0 bytes)")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as f:
            major, rate, promised = f.format, int(f.samplerate), int(f.frames)
            log = f.extra_info if _NAMES.get(major) == "WAV" else ""
            try:
                wave = f.read(dtype="float32", always_2d=True)
            except soundfile.LibsndfileError as e:
                name = _NAMES.get(major, major)
                raise AudioDecodeError(path, (
                    f"truncated or damaged {name} data: decoding stopped with "
                    f"'{e.error_string}' before the {promised} samples its header "
                    "promises")) from e
    except soundfile.LibsndfileError as e:
        raise AudioDecodeError(path, _refused(data, e.error_string)) from e
    name = _NAMES.get(major, major)
    if file_format is not None and major not in _MAJOR[_format_name(file_format)]:
        raise AudioDecodeError(path, f"file_format={file_format!r}, but the data is {name}")
    short = _SHORT_CHUNK.search(log)
    if short and int(short.group(1)) not in _PLACEHOLDER_SIZES and int(
            short.group(2)) < int(short.group(1)):
        raise AudioDecodeError(path, (
            f"truncated: the {name} header promises {short.group(1)} bytes of samples, "
            f"the file holds {short.group(2)}"))
    # MP3 lengths are estimated from the file size (ID3 tags included), so a
    # whole file may decode a frame short of it; a cut one falls far short.
    slack = max(1152, promised // 100) if name == "MP3" else 0
    if 0 < len(wave) < promised - slack:
        raise AudioDecodeError(path, (
            f"truncated: decoded {len(wave)} of the {promised} samples its {name} "
            "header promises"))
    if wave.shape[0] == 0 or wave.shape[1] == 0:
        raise AudioDecodeError(path, f"decoded to no samples (shape {wave.shape})")
    if rate <= 0:
        raise AudioDecodeError(path, f"header gives an invalid sample rate ({rate} Hz)")
    bad = int(wave.size - np.count_nonzero(np.isfinite(wave)))
    if bad:
        raise AudioDecodeError(path, f"contains {bad} NaN or infinite samples")
    return wave, rate


def _contents_bytes(contents):
    if isinstance(contents, (bytes, bytearray, memoryview)):
        return bytes(contents)
    return tf.convert_to_tensor(contents, tf.string).numpy()


_SUFFIXES = {".wav": ("WAV",), ".flac": ("FLAC",), ".ogg": ("OGG",), ".mp3": ("MP3", "MPEG")}


def _require_decoder(suffix):
    """Raises ImportError when libsndfile here cannot read files with `suffix`.

    The soundfile wheels bundle a libsndfile that reads all four; one built
    against an older system library (before 1.1) lacks MP3, and one without
    Ogg support lacks Vorbis and Opus. Checked before a stream starts, so
    that a missing decoder is not reported as every such file skipped.
    """
    suffix = str(suffix).lower()
    majors = _SUFFIXES.get(suffix)
    if majors and not set(majors) & set(soundfile.available_formats()):
        raise ImportError(
            f"Decoding {suffix} files needs a libsndfile with {majors[0]} support; this "
            f"soundfile ({soundfile.__version__}) uses libsndfile "
            f"{soundfile.__libsndfile_version__}, which lacks it. Install the soundfile "
            "wheel, which bundles one that has it: pip install --upgrade soundfile"
        )


def decode_audio(contents, file_format=None):
    """Decodes an encoded audio file into a float32 waveform.

    soundfile (libsndfile) does the decoding: WAV in any layout it reads
    (8/16/24/32-bit PCM, float, WAVE_FORMAT_EXTENSIBLE, any channel count),
    FLAC, Ogg Vorbis and Opus, MP3, and the rarer formats libsndfile knows.
    The format comes from the data itself. Works eagerly and inside
    `tf.data` / `tf.function`, where it runs through `tf.numpy_function`.

    Args:
        contents: Scalar string tensor (or `bytes`) holding the file contents.
        file_format: `None`, or one of `"wav"`, `"flac"`, `"ogg"`, `"mp3"`
            to insist on that format: data of another format is an error.

    Returns:
        Tuple `(waveform, sample_rate)`: a float32 tensor of shape
        `(samples, channels)` and an int32 scalar tensor.

    Raises:
        ValueError: eagerly, for an unknown `file_format`.
        AudioDecodeError (a `ValueError`): eagerly, for data that is not
            audio, truncated or damaged, decodes to no samples or holds NaN or
            infinite samples; in a graph the same message comes as a
            `tf.errors.InvalidArgumentError`.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> wav = tf.audio.encode_wav(np.zeros((800, 1), "float32"), 8000)
    >>> wave, rate = decode_audio(wav)
    >>> tuple(wave.shape), int(rate)
    ((800, 1), 8000)
    """
    if file_format is not None:
        _format_name(file_format)
    if tf.executing_eagerly():
        wave, rate = _decode_bytes(_contents_bytes(contents), file_format=file_format)
        return tf.constant(wave), tf.constant(rate, tf.int32)
    contents = tf.convert_to_tensor(contents, tf.string)

    def decode(data):
        wave, rate = _decode_bytes(data, file_format=file_format)
        return wave, np.int32(rate)

    wave, rate = tf.numpy_function(decode, [contents], (tf.float32, tf.int32), stateful=False)
    return tf.ensure_shape(wave, [None, None]), tf.ensure_shape(rate, [])


def _read_file(path):
    if "://" in path:  # gs://, s3://, ...: TensorFlow's file systems
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"Audio file not found: {path}")
        if tf.io.gfile.isdir(path):
            raise AudioDecodeError(path, "is a directory, not an audio file")
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"Audio file not found: {path}") from None
    except IsADirectoryError:
        raise AudioDecodeError(path, "is a directory, not an audio file") from None


def load_audio(path, sample_rate=None, mono=True):
    """Reads, decodes, optionally downmixes and resamples one audio file.

    Decoding is soundfile's (see `decode_audio` for the formats), resampling
    soxr's (see `resample`). Every failure names the file.

    Args:
        path: Path of an audio file (local, or a URL TensorFlow's file
            systems read, such as `gs://...`).
        sample_rate: Target rate in Hz, or `None` to keep the file's rate.
        mono: If `True`, average the channels and return a 1-D waveform.

    Returns:
        Tuple `(waveform, sample_rate)`: a float32 numpy array of shape
        `(samples,)` (mono) or `(samples, channels)`, and the rate as an int.

    Raises:
        FileNotFoundError: the file does not exist.
        AudioDecodeError: the file is empty, not an audio file, truncated or
            damaged, decodes to no samples, or holds NaN/infinite samples.

    Example:

    >>> import os, tempfile, numpy as np, tensorflow as tf
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> tone = np.sin(np.arange(8000) / 5).astype("float32")[:, None] / 2
    >>> tf.io.write_file(path, tf.audio.encode_wav(tone, 8000))
    >>> wave, rate = load_audio(path, sample_rate=16000)
    >>> wave.shape, rate
    ((16000,), 16000)
    """
    path = str(path)
    wave, rate = _decode_bytes(_read_file(path), path)
    if mono:
        wave = wave.mean(axis=1, dtype=np.float32)
    if sample_rate is not None and int(sample_rate) != rate:
        wave = _resample_array(wave, rate, _check_rate("sample_rate", sample_rate))
        rate = int(sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32), rate


def to_mono(wave):
    """Averages the channels of a `(samples, channels)` waveform.

    Args:
        wave: Float tensor of shape `(samples, channels)`, or `(samples,)`
            which is returned unchanged.

    Returns:
        Float tensor of shape `(samples,)`.

    Example:

    >>> to_mono([[1.0, 0.0], [0.5, 0.5]]).numpy().tolist()
    [0.5, 0.5]
    """
    wave = tf.convert_to_tensor(wave)
    if wave.shape.rank == 1:
        return wave
    if wave.shape.rank != 2:
        raise ValueError(
            f"to_mono expects wave of shape (samples,) or (samples, channels); "
            f"got shape {wave.shape}"
        )
    return tf.reduce_mean(wave, axis=1)


# ---------------------------------------------------------------------------
# Resampling


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(
            f"resample: {name} must be a positive Python int (the rates fix the "
            f"filter); got {value!r}"
        )
    return int(value)


def resample(wave, rate_in, rate_out):
    """Resamples a waveform with soxr (the SoX resampler, "HQ" quality).

    The output is aligned with the input (no filter delay) and has
    `ceil(samples * rate_out / rate_in)` samples. Inside a graph it runs
    through `tf.numpy_function`.

    Args:
        wave: Float tensor of shape `(samples,)` or `(samples, channels)`.
        rate_in: Python int, the input sample rate in Hz.
        rate_out: Python int, the output sample rate in Hz.

    Returns:
        Float32 tensor of the same rank as `wave`.

    Example:

    >>> import numpy as np
    >>> resample(np.zeros(8000, "float32"), 8000, 16000).shape
    TensorShape([16000])
    """
    rate_in, rate_out = _check_rate("rate_in", rate_in), _check_rate("rate_out", rate_out)
    wave = tf.cast(tf.convert_to_tensor(wave), tf.float32)
    rank = wave.shape.rank
    if rank not in (1, 2):
        raise ValueError(
            "resample expects wave of shape (samples,) or (samples, channels); "
            f"got shape {wave.shape}"
        )
    if rate_in == rate_out:
        return wave
    if hasattr(wave, "numpy"):
        return tf.constant(_resample_array(wave.numpy(), rate_in, rate_out))
    out = tf.numpy_function(lambda x: _resample_array(x, rate_in, rate_out), [wave],
                            tf.float32, stateful=False)
    return tf.ensure_shape(out, [None] * rank)


def _seed_tensor(seed):
    if seed is None:
        return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int64)
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank != 1 or seed.shape[0] not in (2, None):
        raise ValueError(f"seed must be an int or a shape-[2] int tensor; got shape {seed.shape}")
    return tf.cast(seed, tf.int64)


def crop_window(n, length, mode="random", seed=None):
    """Where `fix_length` puts a clip of `n` samples: `(start, pad_left)`.

    A longer clip is cropped from `start` (`pad_left` is 0); a shorter one
    is placed after `pad_left` zeros (`start` is 0). The offset is drawn as
    `fix_length` draws it (the same stateless op on the same seed), so a
    reader that knows only a clip's length can read just the crop that
    `fix_length` would cut from the whole clip.

    Args:
        n: The clip's length in samples (a Python int or an int32 scalar).
        length, mode, seed: As for `fix_length`.

    Returns:
        Two int32 scalar tensors.

    Example:

    >>> [int(t) for t in crop_window(10, 4, "center")]
    [3, 0]
    >>> [int(t) for t in crop_window(2, 4, "center")]
    [0, 1]
    """
    if mode not in ("random", "center"):
        raise ValueError(f"crop_window: mode must be 'random' or 'center'; got {mode!r}")
    excess = tf.cast(n, tf.int32) - int(length)
    spread = tf.abs(excess)
    if mode == "center":
        offset = spread // 2
    else:
        offset = tf.random.stateless_uniform(
            [], seed=_seed_tensor(seed), minval=0, maxval=spread + 1, dtype=tf.int32
        )
    return tf.where(excess > 0, offset, 0), tf.where(excess < 0, offset, 0)


def fix_length(wave, length, mode="random", seed=None):
    """Pads with zeros or crops a waveform to exactly `length` samples.

    In `"random"` mode (training) a longer clip is cropped at a random offset
    and a shorter one is placed at a random offset in silence; in `"center"`
    mode (evaluation) both are centred. Random offsets come from stateless
    random ops, so a fixed `seed` gives the same result every time, also
    inside `tf.data`.

    Args:
        wave: Tensor of shape `(samples,)` or `(samples, channels)`.
        length: Python int, the number of samples wanted.
        mode: `"random"` or `"center"`.
        seed: For `"random"`: an int, a shape-`[2]` int tensor (e.g. one
            element of `tf.data.Dataset.random(...).batch(2)`), or `None`
            for a fresh random offset each call.

    Returns:
        Tensor of shape `(length,)` or `(length, channels)`.

    Example:

    >>> fix_length([1.0, 2.0, 3.0, 4.0], 2, mode="center").numpy().tolist()
    [2.0, 3.0]
    >>> fix_length([1.0, 2.0], 4, mode="center").numpy().tolist()
    [0.0, 1.0, 2.0, 0.0]
    """
    if mode not in ("random", "center"):
        raise ValueError(f"fix_length: mode must be 'random' or 'center'; got {mode!r}")
    if not isinstance(length, (int, np.integer)) or length <= 0:
        raise ValueError(f"fix_length: length must be a positive int; got {length!r}")
    length = int(length)
    wave = tf.convert_to_tensor(wave)
    if wave.shape.rank not in (1, 2):
        raise ValueError(
            "fix_length expects wave of shape (samples,) or (samples, channels); "
            f"got shape {wave.shape}"
        )
    n = tf.shape(wave)[0]
    start, pad_left = crop_window(n, length, mode, seed)
    kept = wave[start : start + tf.minimum(n, length)]
    pad_right = length - tf.shape(kept)[0] - pad_left
    paddings = [[pad_left, pad_right]] + [[0, 0]] * (wave.shape.rank - 1)
    out = tf.pad(kept, paddings)
    return tf.ensure_shape(out, [length] + wave.shape.as_list()[1:])


def sound_crop(wave, length, seed=None, max_quieter_db=20.0, tries=5):
    """A random crop of `length` samples that carries sound.

    Draws up to `tries` random crops (`fix_length(..., "random")`) and keeps
    the first whose RMS level is at most `max_quieter_db` below the whole
    clip's, else the loudest drawn. Piczak (2015) likewise drops near-silent
    segments: a silent crop mixed with another clip would get a label for a
    sound it does not hold.

    Args:
        wave: Tensor of shape `(samples,)` or `(samples, channels)`.
        length: Python int, the number of samples wanted.
        seed: An int or a shape-`[2]` int tensor, as for `fix_length`.
        max_quieter_db: How far below the clip's level a crop may be.
        tries: Crops drawn at most.

    Returns:
        Tensor of shape `(length,)` or `(length, channels)`.

    Example:

    >>> import numpy as np
    >>> wave = np.zeros(1000, "float32")
    >>> wave[600:] = 0.5  # sound in the last 400 samples only
    >>> [bool(sound_crop(wave, 200, seed=s).numpy().any()) for s in range(4)]
    [True, True, True, True]
    """
    if not isinstance(tries, (int, np.integer)) or tries < 1:
        raise ValueError(f"sound_crop: tries must be an int >= 1; got {tries!r}")
    if not max_quieter_db >= 0:
        raise ValueError(f"sound_crop: max_quieter_db must be >= 0; got {max_quieter_db!r}")
    wave = tf.convert_to_tensor(wave, tf.float32)
    seeds = tf.random.experimental.stateless_split(_seed_tensor(seed), int(tries))
    crops = tf.stack([fix_length(wave, length, "random", seeds[i]) for i in range(int(tries))])
    crop_axes = list(range(1, crops.shape.rank))
    crop_rms = tf.sqrt(tf.reduce_mean(tf.square(crops), axis=crop_axes))
    clip_rms = tf.sqrt(tf.reduce_mean(tf.square(wave)))
    loud = crop_rms >= clip_rms * 10.0 ** (-max_quieter_db / 20.0)
    first_loud = tf.argmax(tf.cast(loud, tf.int32))
    return crops[tf.where(tf.reduce_any(loud), first_loud, tf.argmax(crop_rms))]


def training_crop(wave, length, seed, sound_crops=None):
    """A training crop: `fix_length(..., "random")`, or with `sound_crops`
    (a level in dB) `sound_crop(..., max_quieter_db=sound_crops)`.

    Example:

    >>> training_crop([1.0, 2.0, 3.0], 2, seed=0).shape
    TensorShape([2])
    """
    if sound_crops is None:
        return fix_length(wave, length, "random", seed)
    return sound_crop(wave, length, seed, max_quieter_db=sound_crops)


def multi_crop(wave, length, num_crops=10):
    """Evenly spaced crops covering a clip, for test-time averaging.

    As in BC learning / EnvNet evaluation, predictions over `num_crops`
    windows spread from start to end of the clip are averaged. A clip shorter
    than `length` is centred in zeros, so all crops are then identical.

    Args:
        wave: Tensor of shape `(samples,)` or `(samples, channels)`.
        length: Python int, samples per crop.
        num_crops: Python int, number of crops.

    Returns:
        Tensor of shape `(num_crops, length)` or `(num_crops, length, channels)`.

    Example:

    >>> multi_crop(tf.range(10.0), 4, num_crops=3).numpy().tolist()
    [[0.0, 1.0, 2.0, 3.0], [3.0, 4.0, 5.0, 6.0], [6.0, 7.0, 8.0, 9.0]]
    """
    if not isinstance(num_crops, (int, np.integer)) or num_crops <= 0:
        raise ValueError(f"multi_crop: num_crops must be a positive int; got {num_crops!r}")
    wave = tf.convert_to_tensor(wave)
    n = tf.shape(wave)[0]
    wave = tf.cond(
        n < length, lambda: fix_length(wave, length, mode="center"), lambda: wave
    )
    last = tf.cast(tf.shape(wave)[0] - length, tf.float64)
    starts = tf.linspace(tf.constant(0.0, tf.float64), last, int(num_crops))
    starts = tf.cast(tf.round(starts), tf.int32)
    index = starts[:, None] + tf.range(int(length))[None, :]
    return tf.gather(wave, index)


def normalize(wave, mode="peak", target=1.0, axis=None, epsilon=1e-8):
    """Scales a waveform to a given peak or RMS level.

    Silence (level below `epsilon`) is returned unchanged instead of being
    divided by zero, so the result never contains NaN.

    Args:
        wave: Float tensor.
        mode: `"peak"` (max absolute value becomes `target`) or `"rms"`
            (root mean square becomes `target`).
        target: Level to reach.
        axis: Axes over which the level is measured (`None`: the whole
            tensor; e.g. `-1` for a batch of mono clips `(batch, samples)`).
        epsilon: Levels at or below this count as silence.

    Returns:
        Tensor shaped like `wave`.

    Example:

    >>> normalize([0.0, 0.25, -0.5]).numpy().tolist()
    [0.0, 0.5, -1.0]
    >>> normalize([0.0, 0.0]).numpy().tolist()
    [0.0, 0.0]
    """
    if mode not in ("peak", "rms"):
        raise ValueError(f"normalize: mode must be 'peak' or 'rms'; got {mode!r}")
    wave = tf.convert_to_tensor(wave)
    if not wave.dtype.is_floating:
        wave = tf.cast(wave, tf.float32)
    if mode == "peak":
        level = tf.reduce_max(tf.abs(wave), axis=axis, keepdims=True)
    else:
        level = tf.sqrt(tf.reduce_mean(tf.square(wave), axis=axis, keepdims=True))
    scale = tf.where(level > epsilon, target / tf.maximum(level, epsilon), tf.ones_like(level))
    return wave * scale
