"""Synthetic spoken digits made offline with eSpeak NG: test and benchmark data.

Not the main job's data any more: `speechmix demo` trains on real
recordings shipped with the package (`datasets.builtin_digits`), because
eSpeak's voices are variants of one synthesiser, not people, and what
helps real speakers did not help on them (benchmarks/NOTES.md). This
module stays for what 480 fixed clips cannot do: write folders of any
number of speakers and takes ("zero".."nine" class folders) for the
tests and the streaming benchmarks. It needs the eSpeak NG library of the
`espeakng-loader` wheel (the `dev` extras), called through ctypes.

Each "speaker" is a fixed combination of accent, voice variant, base pitch,
pitch range and speaking rate; each take varies rate and pitch a little
and adds random leading/trailing silence, gain and light noise.

Files are written as `{class}/{digit}_{speaker}_{take}.wav` (16-bit PCM), so
both `datasets.from_folder` and FSDD-style name parsing work.
"""

import ctypes
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_speechmix.audio import datasets
from keras_speechmix.audio import decode as audio

__all__ = ["DIGITS", "synthesize_digits", "load_default_digits", "default_cache_dir"]

logger = logging.getLogger(__name__)

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ESPEAK_RATE = 22050  # eSpeak NG's fixed output rate
# Bump when the synthesis recipe changes, so cached sets are regenerated
# (2: resampled by soxr instead of tensorflow-io).
RECIPE_VERSION = 2
MARKER = ".speechmix-synth.json"

ACCENTS = (
    "en-us",
    "en",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-us-nyc",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
# Intelligible variants only: whisper, robot and "Demonic"-style ones would
# make classes hard for reasons unrelated to speakers.
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7",
    "f1", "f2", "f3", "f4",
    "klatt", "klatt2", "klatt3", "klatt4",
    "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Michael", "Mike",
    "adam", "anika", "aunty", "benjamin", "boris", "david", "edward",
    "grandpa", "ian", "john", "linda", "max", "norbert", "paul", "quincy",
    "rob", "steph", "travis", "victor", "zac",
)  # fmt: skip

_NO_SYNTH_HINT = (
    "Point the command at a folder of recordings instead, e.g. "
    "`speechmix train --data DIR` (one subfolder per class)."
)

# eSpeak NG C API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # without it, a missing data dir calls exit()
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _ESpeak:
    """One eSpeak NG instance per process; its C API keeps global state."""

    _instance = None
    _create_lock = threading.Lock()

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as e:
            raise RuntimeError(
                "Cannot synthesise the default digit set: the espeakng-loader "
                f"package is not installed ({e}); `pip install espeakng-loader` (in "
                "the package's `dev` extras). "
                + _NO_SYNTH_HINT
            ) from e
        try:
            lib_path = espeakng_loader.get_library_path()
            data_path = espeakng_loader.get_data_path()
            lib = ctypes.CDLL(lib_path)
        except (OSError, RuntimeError) as e:
            raise RuntimeError(
                f"Cannot synthesise the default digit set: loading eSpeak NG failed ({e}). "
                + _NO_SYNTH_HINT
            ) from e
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synchronize.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise RuntimeError(
                f"Cannot synthesise the default digit set: espeak_Initialize failed "
                f"(returned {rate}; data path {data_path}). " + _NO_SYNTH_HINT
            )
        self.lib, self.rate, self.lock = lib, rate, threading.Lock()
        self._chunks = []
        self._callback = _CALLBACK(self._collect)  # kept alive: C holds a pointer
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls):
        with cls._create_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _collect(self, samples, count, events):
        if count > 0 and samples:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def say(self, text, voice, rate=175, pitch=50, pitch_range=50):
        """Synthesises `text`; returns float32 samples at `self.rate`."""
        with self.lock:
            self._chunks = []
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise RuntimeError(f"eSpeak NG has no voice {voice!r}. " + _NO_SYNTH_HINT)
            for param, value in (
                (_PARAM_RATE, rate),
                (_PARAM_PITCH, pitch),
                (_PARAM_RANGE, pitch_range),
                (_PARAM_VOLUME, 100),
            ):
                self.lib.espeak_SetParameter(param, int(value), 0)
            data = text.encode("utf-8") + b"\x00"
            status = self.lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            self.lib.espeak_Synchronize()
            if status != 0:
                raise RuntimeError(f"espeak_Synth failed for voice {voice!r} (status {status})")
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, np.float32)
        return np.concatenate(chunks).astype(np.float32) / 32768.0


def default_cache_dir():
    """The folder where synthesised data is cached.

    `$KERAS_SPEECHMIX_CACHE`, else `$XDG_CACHE_HOME/keras_speechmix`, else
    `~/.cache/keras_speechmix`.

    Example:

    >>> isinstance(default_cache_dir(), Path)
    True
    """
    if os.environ.get("KERAS_SPEECHMIX_CACHE"):
        return Path(os.environ["KERAS_SPEECHMIX_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "keras_speechmix"
    return Path.home() / ".cache" / "keras_speechmix"


def _speakers(num_speakers, seed):
    """Deterministic speaker plans: accent, variant, pitch, range, rate.

    Accents cycle fastest and variants follow a seeded permutation, so even a
    few speakers span several accents and voices; since 8 and 43 are coprime,
    every (accent, variant) pair is distinct for all allowed counts.
    """
    rng = np.random.default_rng([seed, 0])
    order = rng.permutation(len(VARIANTS))
    plans = []
    for i in range(num_speakers):
        accent = ACCENTS[i % len(ACCENTS)]
        variant = VARIANTS[order[i % len(VARIANTS)]]
        plans.append(
            {
                "id": i,
                "name": f"s{i:02d}-{accent}-{variant.lower()}",
                "accent": accent,
                "variant": variant,
                "pitch": int(rng.integers(25, 76)),
                "range": int(rng.integers(30, 91)),
                "rate": int(rng.integers(135, 206)),
            }
        )
    return plans


def _render(engine, plan, digit, take, sample_rate, seed):
    rng = np.random.default_rng([seed, 1, plan["id"], digit, take])
    wave = engine.say(
        DIGITS[digit],
        f"{plan['accent']}+{plan['variant']}",
        rate=plan["rate"] * rng.uniform(0.92, 1.08),
        pitch=np.clip(plan["pitch"] + rng.integers(-6, 7), 0, 100),
        pitch_range=plan["range"],
    )
    if wave.size == 0 or not np.any(wave):
        raise RuntimeError(
            f"eSpeak NG produced no audio for {DIGITS[digit]!r} with voice "
            f"{plan['accent']}+{plan['variant']}. " + _NO_SYNTH_HINT
        )
    if sample_rate != engine.rate:
        wave = audio.resample(wave, engine.rate, sample_rate).numpy()
    lead, tail = (int(rng.uniform(0.05, 0.3) * sample_rate) for _ in range(2))
    wave = np.concatenate([np.zeros(lead, np.float32), wave, np.zeros(tail, np.float32)])
    wave *= rng.uniform(0.2, 0.9) / max(float(np.abs(wave).max()), 1e-6)  # random gain
    speech_rms = float(np.sqrt(np.mean(wave[lead : len(wave) - tail] ** 2)))
    snr_db = rng.uniform(25.0, 45.0)
    wave += rng.normal(0.0, speech_rms * 10 ** (-snr_db / 20), wave.shape).astype(np.float32)
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def _params(num_speakers, takes_per_speaker, sample_rate, seed):
    return {
        "recipe": RECIPE_VERSION,
        "num_speakers": num_speakers,
        "takes_per_speaker": takes_per_speaker,
        "sample_rate": sample_rate,
        "seed": seed,
    }


def _is_finished(folder, params):
    """True when `folder` holds a completed synthesis made with `params`."""
    try:
        info = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and all(info.get(k) == v for k, v in params.items())


def synthesize_digits(
    out_dir=None,
    num_speakers=12,
    takes_per_speaker=5,
    sample_rate=16000,
    seed=0,
    overwrite=False,
):
    """Synthesises a spoken-digit dataset ("zero".."nine") with eSpeak NG.

    Writes `num_speakers * takes_per_speaker` 16-bit WAV files per digit to
    `out_dir/{digit name}/{digit}_{speaker}_{take}.wav`. The set is built in a
    temporary sibling folder and moved into place with a marker file written
    last, so an interrupted run never leaves a half-made set; a finished set
    with the same parameters is reused.

    Args:
        out_dir: Target folder; defaults to a versioned folder under
            `default_cache_dir()` named after the parameters.
        num_speakers: Number of synthetic speakers (accent/variant/pitch/rate
            combinations), at most `len(ACCENTS) * len(VARIANTS)`.
        takes_per_speaker: Recordings of each digit per speaker.
        sample_rate: Output rate in Hz (eSpeak renders at 22050 Hz;
            other rates are resampled by `audio.resample`, i.e. soxr).
        seed: Seed for the speaker plans, noise and gain.
        overwrite: Rebuild even if `out_dir` holds a finished set, and replace
            an existing `out_dir` that is not one.

    Returns:
        `pathlib.Path` of the dataset folder.

    Raises:
        RuntimeError: eSpeak NG cannot be loaded or produces no audio; the
            message says how to use a folder of recordings instead.
        FileExistsError: `out_dir` exists, is not empty and holds no finished
            set with these parameters (and `overwrite` is false).

    Example:

    >>> import tempfile
    >>> path = synthesize_digits(tempfile.mkdtemp() + "/digits",
    ...                          num_speakers=1, takes_per_speaker=1)
    >>> sorted(p.name for p in path.iterdir() if p.is_dir())[:3]
    ['eight', 'five', 'four']
    """
    for name, value, low in (
        ("num_speakers", num_speakers, 1),
        ("takes_per_speaker", takes_per_speaker, 1),
        ("sample_rate", sample_rate, 1000),
    ):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"synthesize_digits: {name} must be an int >= {low}; got {value!r}")
    if num_speakers > len(ACCENTS) * len(VARIANTS):
        raise ValueError(
            f"synthesize_digits: num_speakers={num_speakers} exceeds the "
            f"{len(ACCENTS) * len(VARIANTS)} available voice combinations"
        )
    params = _params(int(num_speakers), int(takes_per_speaker), int(sample_rate), int(seed))
    if out_dir is None:
        out_dir = default_cache_dir() / (
            f"digits-espeak-v{RECIPE_VERSION}-{num_speakers}spk-{takes_per_speaker}takes-"
            f"{sample_rate}hz-seed{seed}"
        )
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not overwrite:
        if _is_finished(out_dir, params):
            return out_dir
        if any(out_dir.iterdir()):
            raise FileExistsError(
                f"synthesize_digits: {out_dir} exists and does not hold a finished "
                "synthesis with these parameters; choose another out_dir or pass "
                "overwrite=True to replace it"
            )

    engine = _ESpeak.get()
    started = time.perf_counter()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        plans = _speakers(params["num_speakers"], params["seed"])
        for digit, word in enumerate(DIGITS):
            (staging / word).mkdir(parents=True)
            for plan in plans:
                for take in range(params["takes_per_speaker"]):
                    wave = _render(engine, plan, digit, take, params["sample_rate"], params["seed"])
                    encoded = tf.audio.encode_wav(wave[:, None], params["sample_rate"])
                    name = f"{digit}_{plan['name']}_{take}.wav"
                    (staging / word / name).write_bytes(encoded.numpy())
        info = dict(params, speakers=plans, files=10 * len(plans) * params["takes_per_speaker"])
        (staging / MARKER).write_text(json.dumps(info, indent=1))
        if out_dir.exists():
            if _is_finished(out_dir, params) and not overwrite:
                return out_dir  # another process finished first
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "Synthesised %d spoken digits to %s in %.1f s",
        10 * len(plans) * params["takes_per_speaker"],
        out_dir,
        time.perf_counter() - started,
    )
    return out_dir


def load_default_digits(**kwargs):
    """Synthesises (or reuses) the default digit set and loads it.

    Args:
        **kwargs: Passed to `synthesize_digits` (`out_dir`, `num_speakers`,
            `takes_per_speaker`, `sample_rate`, `seed`, `overwrite`).

    Returns:
        A `datasets.ClipSet` with class names "zero".."nine" (labels 0-9), groups
        = speaker names, and `meta["index"]` = take number.

    Example:

    >>> clips = load_default_digits(num_speakers=2, takes_per_speaker=1)  # doctest: +SKIP
    >>> train, test = datasets.split_by_group(clips, clips.groups[0])  # doctest: +SKIP
    """
    folder = synthesize_digits(**kwargs)
    clips = datasets.from_folder(folder, extensions=(".wav",))
    groups, takes = [], []
    for path in clips.paths:
        match = datasets.FSDD_NAME.match(Path(path).stem)
        if match is None:
            raise ValueError(
                f"load_default_digits: unexpected file {path} in {folder}; "
                "re-run with overwrite=True"
            )
        groups.append(match["speaker"])
        takes.append(int(match["index"]))
    return datasets.ClipSet(
        clips.waveforms,
        clips.labels,
        clips.class_names,
        clips.sample_rate,
        paths=clips.paths,
        groups=groups,
        meta={"index": takes},
        report=clips.report,
    )
