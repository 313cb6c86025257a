"""Writes keras_speechmix/audio/data/fsdd_digits.npz, the built-in spoken digits.

A subset of the Free Spoken Digit Dataset (FSDD, CC BY-SA 4.0): takes 0-7
of every digit by each of its 6 speakers, 480 clips, the 16-bit samples at
8 kHz exactly as in the WAV files (lossless; numpy's zip compression).
`keras_speechmix.audio.datasets.builtin_digits` reads it.

    python scripts/make_builtin_digits.py ../shared/data/fsdd
"""

import argparse
import re
from pathlib import Path

import numpy as np
import soundfile as sf

TAKES = 8  # 8 takes x 10 digits x 6 speakers: 2.5 MB, inside the wheel's 3 MB
NAME = re.compile(r"^(\d)_(.+)_(\d+)$")
OUT = Path(__file__).resolve().parents[1] / "keras_speechmix" / "audio" / "data" / "fsdd_digits.npz"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fsdd", help="FSDD folder (with recordings/)")
    parser.add_argument("--takes", type=int, default=TAKES)
    args = parser.parse_args()
    rows = []
    for path in sorted(Path(args.fsdd, "recordings").glob("*.wav")):
        digit, speaker, take = NAME.match(path.stem).groups()
        if int(take) < args.takes:
            rows.append((speaker, int(digit), int(take), path))
    rows.sort()
    speakers = sorted({r[0] for r in rows})
    waves = []
    for _, _, _, path in rows:
        wave, rate = sf.read(path, dtype="int16")
        if rate != 8000 or wave.ndim != 1:
            raise ValueError(f"{path}: expected mono 8 kHz, got {rate} Hz, shape {wave.shape}")
        waves.append(wave)
    np.savez_compressed(
        OUT,
        samples=np.concatenate(waves),
        lengths=np.array([len(w) for w in waves], np.int32),
        digits=np.array([r[1] for r in rows], np.uint8),
        speakers=np.array(speakers),
        speaker=np.array([speakers.index(r[0]) for r in rows], np.uint8),
        takes=np.array([r[2] for r in rows], np.uint8),
        sample_rate=np.int32(8000))
    print(f"{OUT}: {len(rows)} clips, {OUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
