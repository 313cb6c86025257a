"""How far soundfile + soxr samples are from the old tensorflow-io path (issue 20, item 5).

The accuracy tables were computed with keras_speechmix.audio as of commit
994d207 (hand-parsed headers, tensorflow-io's decoders and resampler).
This loads that module from git history beside the current one and
compares the samples each gives, per file, on ESC-10 (Ogg Vorbis at
44.1 kHz, decoded and resampled to 16 kHz as the ESC-10 tables used it)
and FSDD (WAV at 8 kHz, the rate of the FSDD tables), plus the log-mel
features the reference network sees. Needs tensorflow-io working beside
TensorFlow (the pair TensorFlow 2.17.1 / tensorflow-io 0.37.1).

  python benchmarks/decode_compare.py   # ~5 min on 2 cores
"""

import argparse
import csv
import importlib.util
import subprocess
import tempfile
from pathlib import Path

import common
import numpy as np

OLD_COMMIT = "994d2073e21de4b4f2338f81c7a3d6a7f5031606"


def old_module():
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:keras_speechmix/audio.py"],
                            cwd=common.REPO, capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_audio.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_audio", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stats(pairs):
    """Max absolute difference and SNR (old as the signal) over file pairs."""
    worst, snrs, lengths = [], [], 0
    for a, b in pairs:
        if len(a) != len(b):
            lengths += 1
            a, b = a[:min(len(a), len(b))], b[:min(len(a), len(b))]
        d = a.astype(np.float64) - b
        worst.append(float(np.abs(d).max()))
        error = float(np.sum(d ** 2))
        snrs.append(np.inf if error == 0 else 10 * np.log10(np.sum(a.astype(np.float64) ** 2) / error))
    snrs = np.array(snrs)
    return {"files": len(worst), "length_mismatches": lengths,
            "max_abs_diff": max(worst), "median_max_abs_diff": float(np.median(worst)),
            "identical_files": int(np.isinf(snrs).sum()),
            "snr_db_min": float(snrs.min()), "snr_db_median": float(np.median(snrs))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(common.DEFAULT_DATA))
    parser.add_argument("--out", default=str(common.REPO / "results" / "decode_compare.json"))
    args = parser.parse_args()
    from keras_speechmix import audio as new
    from keras_speechmix.audio.features import LogMelSpectrogram

    old = old_module()
    root = Path(args.data_root)
    with open(root / "esc10" / "meta.csv", newline="") as f:
        esc = [str(root / "esc10" / r["path"]) for r in csv.DictReader(f)]
    decoded, resampled = [], []
    for path in esc:
        decoded.append((old.load_audio(path)[0], new.load_audio(path)[0]))
        resampled.append((old.load_audio(path, 16000)[0], new.load_audio(path, 16000)[0]))
    fsdd = sorted(str(p) for p in (root / "fsdd" / "recordings").glob("*.wav"))
    result = {
        "old": f"keras_speechmix.audio at {OLD_COMMIT[:7]} (tensorflow-io)",
        "new": "soundfile + soxr",
        "esc10_decode_44k": stats(decoded),
        "esc10_decode_resample_16k": stats(resampled),
        "esc10_resampler_only_16k": stats(
            [(old.resample(b, 44100, 16000).numpy(), new.resample(b, 44100, 16000).numpy())
             for _, b in decoded]),
        "fsdd_decode_8k": stats([(old.load_audio(p)[0], new.load_audio(p)[0]) for p in fsdd]),
    }
    # The reference network's front end (64 log-mel bands up to 8 kHz):
    # where in frequency the resampled clips differ, in natural-log units.
    mel = LogMelSpectrogram(sample_rate=16000, num_mel_bins=64)
    per_band = np.mean([np.abs(np.asarray(mel(a[None])) - np.asarray(mel(b[None]))).mean(axis=(0, 1, 3))
                        for a, b in resampled[::6]], axis=0)
    result["esc10_logmel_abs_diff_per_band"] = {
        "clips": len(resampled[::6]), "bands_1_to_60_mean": float(per_band[:60].mean()),
        "bands_61_to_64": [round(float(v), 3) for v in per_band[60:]]}
    for name, value in result.items():
        print(f"{name}: {value}")
    common.write_json(args.out, {"command": "benchmarks/decode_compare.py",
                                 "device": common.device_info("cpu"), **result})


if __name__ == "__main__":
    main()
