"""Recording shifts for scoring: the same test clips quieter, louder, in noise.

A model judged only on clips recorded like its training clips says little
about the ordinary differences between recordings. `apply_shift` changes
test clips at scoring time, seeded, so every method is scored on the very
same shifted clips and compared clip by clip:

- `level:DB`: a gain of DB decibels (`level:-20` is 10 times quieter);
  louder clips are clipped at full scale, as a recorder would.
- `white:SNR`, `pink:SNR`: Gaussian white noise, or pink (1/f power)
  noise, added at SNR decibels below the clip's RMS level.
- `background:SNR`: another clip of the same set (of another class where
  the labels say so) added at SNR decibels: real background sounds for
  environmental sounds, babble from other speakers' words for speech.
- `clean`: the clips as they are.

Example:

>>> import numpy as np
>>> wave = np.sin(np.arange(8000) / 5).astype("float32")
>>> quieter = apply_shift([wave], "level:-20")[0]
>>> round(float(np.abs(quieter).max() / np.abs(wave).max()), 3)
0.1
>>> noisy = apply_shift([wave], "white:10", seed=0)[0]
>>> round(float(10 * np.log10(np.mean(wave ** 2) / np.mean((noisy - wave) ** 2))), 1)
10.0
"""

import zlib

import numpy as np

__all__ = ["SHIFTS", "apply_shift", "parse_shift"]

# What the benchmark, `speechmix train` and the main job score besides the
# clean clips, and `speechmix evaluate --shift all`.
SHIFTS = ("clean", "level:-20", "level:-10", "level:+10", "white:20", "white:10", "white:5",
          "pink:20", "pink:10", "pink:5", "background:10")
_KINDS = ("clean", "level", "white", "pink", "background")


def parse_shift(shift):
    """`(kind, decibels)` of a shift name; a clear error for anything else.

    Example:

    >>> parse_shift("white:20"), parse_shift("level:-10"), parse_shift("clean")
    (('white', 20.0), ('level', -10.0), ('clean', 0.0))
    """
    text = str(shift).strip()
    kind, _, value = text.partition(":")
    if kind == "clean" and not value:
        return "clean", 0.0
    try:
        decibels = float(value)
    except ValueError:
        decibels = None
    if kind not in _KINDS or kind == "clean" or decibels is None or not np.isfinite(decibels):
        raise ValueError(
            f"unknown shift {shift!r}: expected 'clean', 'level:DB' (a gain, e.g. level:-20), "
            "'white:SNR', 'pink:SNR' or 'background:SNR' (noise SNR in dB, e.g. white:10)")
    if kind == "level" and decibels > 40:
        raise ValueError(f"shift {shift!r}: a gain above +40 dB only clips; use at most level:+40")
    return kind, decibels


def _rms(wave):
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if len(wave) else 0.0


def _pink(rng, n):
    """Unit-RMS pink noise: white noise shaped to 1/f power in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequency = np.arange(len(spectrum), dtype=np.float64)
    frequency[0] = 1.0  # keep the (random) DC term at the first bin's weight
    noise = np.fft.irfft(spectrum / np.sqrt(frequency), n)
    return noise / max(_rms(noise), 1e-12)


def _background(rng, index, waves, labels, n):
    """A clip other than `index` (of another class where labels are given),
    looped to `n` samples from a random start, at unit RMS."""
    others = [k for k in range(len(waves)) if k != index and _rms(waves[k]) > 0
              and (labels is None or labels[k] != labels[index])]
    if not others:
        raise ValueError("shift background: needs another non-silent clip "
                         "(of another class) in the set")
    source = np.asarray(waves[others[rng.integers(len(others))]], np.float64)
    start = rng.integers(len(source))
    looped = np.resize(np.roll(source, -start), n)
    return looped / max(_rms(looped), 1e-12)


def apply_shift(waves, shift, seed=0, labels=None):
    """The clips `waves` under `shift` (see the module's docstring).

    Args:
        waves: mono float waveforms (1-D arrays), full scale 1.0.
        shift: a name `parse_shift` reads, e.g. "level:-20", "white:10".
        seed: the noise and background draws; clip `k` under one shift gets
            the same draw whatever the other clips, so methods scored with
            one seed see the same shifted clips.
        labels: class of each clip, so that `background` mixes in clips of
            other classes (any other clip when `None`).

    Returns:
        A list of float32 waveforms, one per clip, of the same lengths.
        Noise is scaled to each clip's RMS; a silent clip gets none.

    Example:

    >>> import numpy as np
    >>> loud = apply_shift([np.full(4, 0.5, "float32")], "level:+10")[0]
    >>> loud.tolist()  # 0.5 x 3.16, clipped at full scale
    [1.0, 1.0, 1.0, 1.0]
    """
    kind, decibels = parse_shift(shift)
    waves = [np.asarray(w, np.float32) for w in waves]
    if kind == "clean":
        return waves
    if kind == "level":
        gain = 10.0 ** (decibels / 20.0)
        return [np.clip(w * gain, -1.0, 1.0).astype(np.float32) for w in waves]
    if labels is not None and len(labels) != len(waves):
        raise ValueError(f"apply_shift: {len(labels)} labels for {len(waves)} clips")
    shifted = []
    salt = zlib.crc32(str(shift).encode())
    for index, wave in enumerate(waves):
        rng = np.random.default_rng([seed, salt, index])
        if kind == "white":
            noise = rng.standard_normal(len(wave))
        elif kind == "pink":
            noise = _pink(rng, len(wave))
        else:
            noise = _background(rng, index, waves, labels, len(wave))
        noise *= _rms(wave) * 10.0 ** (-decibels / 20.0) / max(_rms(noise), 1e-12)
        shifted.append((wave + noise).astype(np.float32))
    return shifted
