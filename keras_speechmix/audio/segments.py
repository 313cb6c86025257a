"""Reading one part of an audio file at another sample rate, without TensorFlow.

A training crop of 1 s from a 5 s Ogg clip needs a fifth of the clip:
`read_header` gets a file's frame count and rate from its header
(soundfile, no decoding), and `read_segment` seeks to the part a crop
needs, decodes only it (plus a short margin for the resampler's filter)
and resamples it with soxr, so that its samples equal those of the whole
file resampled (`resample_array`), to float round-off, at the same
positions.

Exact positions need a segment that starts on the rates' common grid: a
soxr output sample k of a segment starting at input frame `a` lies at
time `a / rate_in + k / rate_out`, which is an output sample of the whole
file only when `a * rate_out / rate_in` is whole, i.e. `a` a multiple of
`rate_in / gcd(rate_in, rate_out)` (441 frames for 44.1 -> 16 kHz).

Example:

>>> import os, tempfile, numpy as np, soundfile
>>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
>>> soundfile.write(path, np.sin(np.arange(44100) / 7), 44100, subtype="FLOAT")
>>> head = read_header(path)
>>> head.frames, head.rate, head.seekable
(44100, 44100, True)
>>> whole = resample_array(soundfile.read(path, dtype="float32")[0], 44100, 16000)
>>> part = read_segment(path, head, 16000, start=5000, count=800)
>>> bool(np.abs(part - whole[5000:5800]).max() < 1e-5)
True
"""

import math
import re
from typing import NamedTuple

import numpy as np
import soundfile
import soxr

__all__ = ["Header", "read_header", "read_segment", "resample_array", "resampled_length"]

# Margin read on each side of a segment, in samples of the lower of the two
# rates: soxr's "HQ" filter reaches about 100 of them (measured: 96 leave
# float round-off, ~5e-7, at 44.1 -> 16, 8 -> 16, 16 -> 8, 48 -> 44.1 and
# 11.025 -> 44.1 kHz; 64 leave errors near 1e-4).
MARGIN = 128

# libsndfile's log for a RIFF file whose data chunk is cut short:
# "data : 32000 (should be 15978)".
SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)

# Containers whose header gives the exact frame count and in which
# libsndfile seeks to the sample (checked against whole decodes in
# tests/test_stream_seek.py). MP3's length is estimated from the file size
# and Opus adds a pre-skip: files of those formats are decoded whole.
_EXACT = {"WAV", "WAVEX", "RF64", "W64", "AIFF", "FLAC"}
_EXACT_SUBTYPES = {"OGG": {"VORBIS"}}


class Header(NamedTuple):
    """What a file's header says: frames, rate, and whether seeking is exact.

    Example:

    >>> Header(frames=220500, rate=44100, seekable=True).frames
    220500
    """

    frames: int
    rate: int
    seekable: bool


def read_header(path):
    """A file's frame count and rate from its header (nothing is decoded).

    `seekable` is False where the header's count is not exact or seeking
    not sample-accurate (MP3, Opus, a WAV whose data chunk is cut short, an
    Ogg stream without its last page): such a file must be decoded whole.

    Raises:
        soundfile.LibsndfileError, OSError: the file cannot be opened.

    Example:

    >>> import os, tempfile, numpy as np, soundfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.flac")
    >>> soundfile.write(path, np.zeros(800), 8000)
    >>> read_header(path)
    Header(frames=800, rate=8000, seekable=True)
    """
    info = soundfile.info(str(path))
    frames, rate = int(info.frames), int(info.samplerate)
    exact = info.format in _EXACT or info.subtype in _EXACT_SUBTYPES.get(info.format, ())
    log = info.extra_info or ""
    damaged = bool(SHORT_CHUNK.search(log)) or "lacks an end-of-stream" in log
    return Header(frames, rate, bool(exact and not damaged and frames > 0 and rate > 0))


def resampled_length(frames, rate_in, rate_out):
    """Samples of `frames` input frames at `rate_out`: `ceil(frames * out / in)`.

    Example:

    >>> resampled_length(220500, 44100, 16000)
    80000
    """
    return -(-int(frames) * int(rate_out) // int(rate_in))


def resample_array(x, rate_in, rate_out):
    """soxr ("HQ") on a `(samples,)` or `(samples, channels)` float32 array.

    The output is aligned with the input (soxr's delay removed) and has
    `resampled_length(len(x), rate_in, rate_out)` samples.

    Example:

    >>> resample_array(np.zeros(8000, "float32"), 8000, 16000).shape
    (16000,)
    """
    x = np.asarray(x, np.float32)
    if rate_in == rate_out:
        return x
    out_len = resampled_length(len(x), rate_in, rate_out)
    # soxr's one-shot call is aligned (its delay removed) but rounds the
    # length; a few zeros past the end (what it assumes there anyway) give
    # the ceil(...) samples this function promises.
    pad = math.ceil(rate_in / rate_out) + 1
    x = np.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
    return np.ascontiguousarray(soxr.resample(x, rate_in, rate_out)[:out_len], np.float32)


def _read_frames(path, first, count, rate):
    """Frames `first .. first + count - 1`, channels averaged, float32."""
    with soundfile.SoundFile(str(path)) as f:
        if f.samplerate != rate:
            raise ValueError(f"{path}: changed since its header was read "
                             f"({f.samplerate} Hz, was {rate} Hz)")
        if f.frames < first + count:  # libsndfile would say "psf_fseek() failed"
            raise ValueError(f"{path}: truncated: it holds {f.frames} frames, the part "
                             f"read needs frames {first} .. {first + count - 1}")
        f.seek(first)
        wave = f.read(count, dtype="float32", always_2d=True)
    if len(wave) < count:
        raise ValueError(f"{path}: truncated: {len(wave)} of the {count} frames from "
                         f"frame {first} could be read, its header promises "
                         f"{first + count} or more")
    wave = wave.mean(axis=1, dtype=np.float32)
    if not np.all(np.isfinite(wave)):
        raise ValueError(f"{path}: contains NaN or infinite samples")
    return wave


def read_segment(path, header, rate, start, count):
    """Samples `start .. start + count - 1` of the file, mono, at `rate`.

    The samples the whole file gives when decoded, averaged over channels
    and resampled (`resample_array`), at the same positions, to float
    round-off: only the frames they need are decoded, from a frame on the
    rates' common grid, with `MARGIN` samples more on each side for the
    resampler's filter (fewer at the file's ends, as the whole file has).

    Args:
        path: A local audio file whose `read_header` is `header`.
        header: Its `Header` (seekable).
        rate: The sample rate wanted.
        start, count: The samples wanted, at `rate`; `start + count` at
            most `resampled_length(header.frames, header.rate, rate)`.

    Raises:
        ValueError: for a range outside the file, or a file that gives
            fewer frames than its header promised (truncated) or holds
            NaN or infinite samples; soundfile.LibsndfileError when the
            decoder fails.

    Example:

    >>> import os, tempfile, soundfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ramp.wav")
    >>> soundfile.write(path, np.arange(100) / 100, 8000, subtype="FLOAT")
    >>> [round(float(v), 2) for v in read_segment(path, read_header(path), 8000, 10, 3)]
    [0.1, 0.11, 0.12]
    """
    frames, rate_in = header.frames, header.rate
    total = resampled_length(frames, rate_in, rate)
    start, count = int(start), int(count)
    if start < 0 or count < 0 or start + count > total:
        raise ValueError(f"read_segment: samples {start} .. {start + count} lie outside "
                         f"{path}'s {total} samples at {rate} Hz")
    if rate_in == rate:
        return _read_frames(path, start, count, rate_in)
    grid = rate_in // math.gcd(rate_in, rate)  # input frames per grid step
    margin = -(-MARGIN * rate_in // min(rate_in, rate))  # in input frames
    first = max(0, start * rate_in // rate - margin)
    first -= first % grid
    last = min(frames, -(-(start + count) * rate_in // rate) + margin)
    wave = resample_array(_read_frames(path, first, last - first, rate_in), rate_in, rate)
    # The segment's output sample 0 is the whole file's sample `offset`.
    offset = first // grid * (rate // math.gcd(rate_in, rate))
    return np.ascontiguousarray(wave[start - offset:start - offset + count])
