"""Streaming datasets: memory, throughput and workers (issue 14's claims).

Each mode checks one claim, prints a table and writes JSON:

- `--memory`: the peak memory of `speechmix train --stream` grows by under
  10 % when the dataset grows 10x (synthesised 1 s WAV clips written to
  disk, 2,000 -> 20,000 files by default; one epoch each).
- `--throughput`: a streamed pipeline (read, decode, resample, crop,
  partner batches) delivers clips at least 2x as fast as the reference
  network trains on them, on this machine's cores; with the decode cost
  per clip (whole, and per training crop read by seeking). On the
  synthesised WAVs, and on ESC-10's Ogg files when `../shared/data` is
  there: seeking (the default, issue 29: at least 1x the model without
  `--cache`), decoded whole (`seek=False`, as before) and cached. Run it
  alone: it times.
- `--workers`: `speechmix train` on 2 workers (TF_CONFIG on loopback,
  MultiWorkerMirroredStrategy) reaches the 1-worker loss on the same global
  batch, within 10 % over the last fifth of the epochs (the built-in
  synthesised digits); a second 1-worker seed shows how far runs differ
  anyway. The runs cannot match step for step: 2 workers split the clips
  and pair partners inside each half.

- `--decode`: what one ESC-10 Ogg clip costs to decode and resample to
  16 kHz (soundfile + soxr, and tensorflow-io's ops as the package used
  them before, when tensorflow-io works here), measured in one run; and
  the two resamplers' quality on sine sweeps (error in the band kept,
  aliasing of what lies above the new Nyquist frequency).

  python benchmarks/streaming.py --memory      # ~10 min on 2 cores
  python benchmarks/streaming.py --throughput  # ~3 min, alone
  python benchmarks/streaming.py --workers     # ~5 min
  python benchmarks/streaming.py --decode      # ~2 min, alone
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import common  # noqa: F401  (sets up the path and quiet logging)
import numpy as np

REPO = common.REPO


def write_clips(root, count, sample_rate=16000, seconds=1.0, classes=10, seed=0):
    """`count` WAV clips in `classes` folders: a class tone in noise each."""
    root = Path(root)
    marker = root / f".done-{count}"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    for k in range(count):
        label = k % classes
        folder = root / f"class{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        tone = np.sin(2 * np.pi * (200 + 150 * label) * t * rng.uniform(0.95, 1.05))
        x = 0.3 * rng.uniform(0.2, 1.0) * tone + 0.05 * rng.standard_normal(len(t))
        with wave.open(str(folder / f"{k:06d}.wav"), "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(sample_rate)
            f.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    marker.write_text("ok")
    return root


def peak_rss_mb(command, env=None):
    """Runs `command`; returns (its peak resident memory in MB, seconds, output tail)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started, output[-1500:]


def train_command(data, out, epochs, extra=()):
    return [sys.executable, "-m", "keras_speechmix", "train", "--data", str(data),
            "--mix", "speechmix", "--epochs", str(epochs), "--out", str(out),
            "--validation", "0", "--quiet", *extra]


def memory(args, work):
    rows = []
    for count in args.sizes:
        data = write_clips(work / f"clips{count}", count)
        out = work / f"run{count}"
        peak, seconds, tail = peak_rss_mb(train_command(data, out, 1, ["--stream"]))
        metrics = json.loads((out / "metrics.json").read_text())
        rows.append({"files": count, "peak_rss_mb": round(peak, 1),
                     "seconds": round(seconds, 1), "num_train": metrics["num_train"],
                     "decoded_mb_if_in_memory": round(count * 16000 * 4 / 1e6, 1)})
        print(f"{count:>7} files: peak {peak:8.1f} MB, {seconds:6.1f} s "
              f"(in memory the decoded clips alone would take "
              f"{rows[-1]['decoded_mb_if_in_memory']:.0f} MB)", flush=True)
    growth = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"] - 1
    claim = {"growth": round(growth, 4), "limit": 0.10, "met": bool(growth < 0.10)}
    print(f"\nPeak memory grew {100 * growth:+.1f} % for {args.sizes[-1] // args.sizes[0]}x "
          f"the files (limit +10 %): {'met' if claim['met'] else 'NOT met'}")
    return {"runs": rows, "claim": claim}


def _stream_rate(files, length, batches, mix_points, seek=True):
    from keras_speechmix import partner_batches

    data = partner_batches(files.to_dataset(length, training=True, seed=0, seek=seek), 32,
                           num_classes=files.num_classes, mix_points=mix_points,
                           seed=0).prefetch(2)
    iterator = iter(data)
    next(iterator)  # start-up (threads, first reads) is not throughput
    started = time.perf_counter()
    seen = 0
    for _ in range(batches):
        try:
            next(iterator)
        except StopIteration:
            iterator = iter(data)
            next(iterator)
        seen += 32
    return seen / (time.perf_counter() - started)


def _decode_ms(files, count):
    """Milliseconds to read, decode and resample one file, one at a time."""
    part = files.subset(np.arange(1, count + 1))
    for _ in files.subset([0]).read(num_parallel_calls=1):  # warm the decoders
        pass
    started = time.perf_counter()
    for _ in part.read(num_parallel_calls=1):
        pass
    return 1000 * (time.perf_counter() - started) / count


def _crop_ms(files, count, length, seek):
    """Milliseconds per training crop, one at a time, once every header is known.

    A first pass over the files reads their headers (and, trimmed, decodes
    each once to find its loud part); the second is timed.
    """
    part = files.subset(np.arange(min(count, len(files))))
    data = part.to_dataset(length, training=True, seed=0, num_parallel_calls=1, seek=seek)
    for _ in data:
        pass
    started = time.perf_counter()
    for _ in data:
        pass
    return 1000 * (time.perf_counter() - started) / len(part)


def _model_rate(length, num_classes, steps):
    import keras

    from keras_speechmix import SpeechMix, partner_batches
    from keras_speechmix.training import experiment

    net = experiment.build_model("speechmix", num_classes, 16000, length)
    view = SpeechMix(net)
    view.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (32, length)).astype("float32")
    y = np.arange(32) % num_classes
    import tensorflow as tf

    batch = next(iter(partner_batches(tf.data.Dataset.from_tensor_slices((x, y)), 32,
                                      num_classes=num_classes,
                                      mix_points=view.num_mix_points, seed=0)))
    for _ in range(3):  # tracing and warm-up
        view.train_on_batch(*batch)
    started = time.perf_counter()
    for _ in range(steps):
        view.train_on_batch(*batch)
    keras.backend.clear_session()
    return 32 * steps / (time.perf_counter() - started), view.num_mix_points


def throughput(args, work):
    from keras_speechmix.audio import streaming

    length = 16000
    model_rate, points = _model_rate(length, 10, args.steps)
    print(f"logmel_fc + SpeechMix trains {model_rate:.0f} clips/s (batch 32, 1 s crops)")
    count = args.sizes[0]
    sets = [("synthesised 1 s WAV, 16 kHz", write_clips(work / f"clips{count}", count))]
    esc = Path(args.data_root) / "esc10" / "meta.csv"
    if esc.exists() and not args.tiny:
        sets.append(("ESC-10 5 s Ogg Vorbis, 44.1 -> 16 kHz", esc))
    rows = []
    listed = []
    for name, spec in sets:
        files = streaming.list_files(spec, 16000)
        listed.append((name, files))
        if files.paths[0].endswith(".ogg"):
            started = time.perf_counter()
            cached = files.cached(tempfile.mkdtemp(prefix="esc10-cache-", dir=work))
            cache_seconds = time.perf_counter() - started
            print(f"--cache: decoded and resampled {len(files)} files once in "
                  f"{cache_seconds:.1f} s", flush=True)
            listed.append((name + ", cached (--cache)", cached))
    for name, files in listed:
        decode = _decode_ms(files, min(args.decode_files, len(files) - 1))
        # Training crops read by seeking (the default) and, for compressed
        # files, decoded whole as before issue 29, for comparison.
        for seek in (True, False) if files.paths[0].endswith(".ogg") else (True,):
            label = name if seek else name + ", decoded whole (seek=False)"
            crop = _crop_ms(files, min(args.decode_files, len(files)), length, seek)
            rate = _stream_rate(files, length, args.batches, points, seek=seek)
            rows.append({"data": label, "files": len(files),
                         "decode_ms_per_clip": round(decode, 2),
                         "crop_ms_per_clip": round(crop, 2), "seek": seek,
                         "stream_clips_per_s": round(rate, 1),
                         "model_clips_per_s": round(model_rate, 1),
                         "ratio": round(rate / model_rate, 2)})
            print(f"{label}: decode {decode:.1f} ms/clip whole, a training crop "
                  f"{crop:.1f} ms, on one thread; stream {rate:.0f} clips/s "
                  f"= {rate / model_rate:.1f}x the model's rate", flush=True)
    met = all(r["ratio"] >= 2 for r in rows if "Ogg" not in r["data"] or "cached" in r["data"])
    print(f"\nStream at least 2x the model's clip rate from WAV files or a --cache "
          f": {'met' if met else 'NOT met'}")
    ogg = [r for r in rows if "Ogg" in r["data"] and "cached" not in r["data"] and r["seek"]]
    if ogg:
        print(f"Ogg files decoded and resampled as read (no --cache) at or above the "
              f"model's rate: {'met' if ogg[0]['ratio'] >= 1 else 'NOT met'}")
    return {"runs": rows, "claim": {"limit_ratio": 2.0, "met": met},
            **({"ogg_stream_claim": {"limit_ratio": 1.0, "met": ogg[0]["ratio"] >= 1}}
               if ogg else {}),
            "load_average": os.getloadavg(),
            **({"cache_seconds": round(cache_seconds, 1)} if len(listed) > 2 else {})}


# ---------------------------------------------------------------------------
# --decode: decoding and resampling, soundfile + soxr against tensorflow-io


def _tfio_path(tfio):
    """Decode + resample through tensorflow-io, as keras_speechmix did up to
    0.1.0: the Vorbis decoder in a tf.function, channels averaged, the raw
    resampling op with its filter delay measured once and cut off."""
    import tensorflow as tf
    from tensorflow_io.python.ops import core_ops

    decode = tf.function(lambda c: tfio.audio.decode_vorbis(c),
                         input_signature=[tf.TensorSpec([], tf.string)])
    delays = {}

    def resample(x, rate_in, rate_out):
        if (rate_in, rate_out) not in delays:  # an impulse at a whole output sample
            g = np.gcd(rate_in, rate_out)
            k = max(1, -(-512 // (rate_in // g)))
            impulse = np.zeros((rate_in // g * k + 4096 * max(1, -(-rate_in // rate_out)), 1),
                               np.float32)
            impulse[rate_in // g * k, 0] = 1
            out = core_ops.io_audio_resample(impulse, rate_in=rate_in, rate_out=rate_out)
            delays[rate_in, rate_out] = max(
                0, int(np.argmax(np.abs(out.numpy()[:, 0]))) - rate_out // g * k)
        delay = delays[rate_in, rate_out]
        n = len(x)
        tail = -(-(delay + 2) * rate_in // rate_out) + 2
        padded = np.pad(np.asarray(x, np.float32).reshape(n, -1), [(0, tail), (0, 0)])
        y = core_ops.io_audio_resample(padded, rate_in=rate_in, rate_out=rate_out).numpy()
        return y[delay:delay + -(-n * rate_out // rate_in), 0]

    def load(path, rate_out):
        wave = decode(tf.io.read_file(path)).numpy().mean(axis=1, dtype=np.float32)
        return resample(wave, 44100, rate_out)

    return load, resample


def _ms_per_call(fn, items, repeats=1):
    fn(items[0])  # warm-up (tracing, first library load)
    started = time.perf_counter()
    for _ in range(repeats):
        for item in items:
            fn(item)
    return 1000 * (time.perf_counter() - started) / (repeats * len(items))


def _sweep(f0, f1, rate, seconds=4.0):
    """The phase of a logarithmic sine sweep from f0 to f1 Hz."""
    t = np.arange(int(rate * seconds)) / rate
    k = np.log(f1 / f0) / seconds
    return 2 * np.pi * f0 * (np.exp(k * t) - 1) / k


def _quality(resample, rate_in=44100, rate_out=16000):
    """Error in the band kept and aliasing of the band removed, in dB."""
    edge = rate_out // 10  # skip the first and last 0.1 s
    # Pass band: 50 Hz up to 0.45 (and 0.25) x the new rate, compared with
    # the same sweep computed at the new rate.
    snr = {}
    for top in (0.45, 0.25):
        y = resample(np.sin(_sweep(50.0, top * rate_out, rate_in)).astype(np.float32),
                     rate_in, rate_out)
        ideal = np.sin(_sweep(50.0, top * rate_out, rate_out))
        assert len(y) == len(ideal), (len(y), len(ideal))
        error = y[edge:-edge] - ideal[edge:-edge]
        snr[top] = 10 * np.log10(np.sum(ideal[edge:-edge] ** 2) / np.sum(error ** 2))
    # Stop band: 0.55 x the new rate up to the old Nyquist frequency; all of
    # it should vanish, whatever comes out is aliasing.
    phase = _sweep(0.55 * rate_out, 0.499 * rate_in, rate_in)
    x = np.sin(phase).astype(np.float32)
    z = resample(x, rate_in, rate_out)[edge:-edge]
    alias = 20 * np.log10(np.sqrt(np.mean(z ** 2)) / np.sqrt(np.mean(x ** 2)))
    # Where the SNR goes: a time offset (phase of a fitted tone) and the gain
    # near the top of the band.
    fits = {}
    for f in (1000, 7000, 7500):
        y = resample(np.sin(2 * np.pi * f * np.arange(2 * rate_in) / rate_in).astype(np.float32),
                     rate_in, rate_out)[edge:-edge]
        t = (np.arange(len(y)) + edge) / rate_out
        basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], 1)
        (a, b), *_ = np.linalg.lstsq(basis, y, rcond=None)
        fits[f] = (20 * np.log10(np.hypot(a, b)), -np.arctan2(b, a) / (2 * np.pi * f) * rate_out)
    return {"passband_snr_db": round(float(snr[0.45]), 1),
            "snr_db_below_quarter_rate": round(float(snr[0.25]), 1),
            "aliasing_db": round(float(alias), 1),
            "time_offset_output_samples": round(float(fits[1000][1]), 3),
            "gain_db_at_7k_7k5": [round(float(fits[f][0]), 2) for f in (7000, 7500)]}


def decode(args, work):
    import csv

    from keras_speechmix.audio import decode as audio

    meta = Path(args.data_root) / "esc10" / "meta.csv"
    if not meta.exists():
        raise SystemExit(f"--decode needs ESC-10 at {meta}")
    with open(meta, newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [str(meta.parent / r["path"]) for r in rows][:args.decode_files]
    waves = [audio.load_audio(p)[0] for p in paths]
    new = {"decode_ms": _ms_per_call(audio.load_audio, paths),
           "resample_ms": _ms_per_call(lambda w: audio.resample(w, 44100, 16000), waves),
           "decode_resample_ms": _ms_per_call(lambda p: audio.load_audio(p, 16000), paths)}
    result = {"clips": len(paths), "clip": "ESC-10 5 s Ogg Vorbis, 44.1 kHz mono -> 16 kHz",
              "soundfile_soxr": {k: round(v, 2) for k, v in new.items()},
              "versions": {"soundfile": audio.soundfile.__version__,
                           "libsndfile": audio.soundfile.__libsndfile_version__,
                           "soxr": audio.soxr.__version__},
              "quality": {"soxr": _quality(lambda x, a, b: audio.resample(x, a, b).numpy())}}
    try:
        tfio = audio.tensorflow_io()
    except ImportError as e:
        tfio, result["tensorflow_io"] = None, f"not measured: {e}"
    if tfio is None:
        result.setdefault("tensorflow_io", "not measured: tensorflow-io is not installed")
    else:
        load, resample = _tfio_path(tfio)
        old = {"decode_ms": _ms_per_call(lambda p: load(p, 44100), paths),
               "resample_ms": _ms_per_call(lambda w: resample(w, 44100, 16000), waves),
               "decode_resample_ms": _ms_per_call(lambda p: load(p, 16000), paths)}
        result["tensorflow_io"] = {k: round(v, 2) for k, v in old.items()}
        result["versions"]["tensorflow-io"] = tfio.__version__
        result["quality"]["tensorflow_io"] = _quality(resample)
        result["speed_up"] = round(old["decode_resample_ms"] / new["decode_resample_ms"], 1)
    result["load_average"] = os.getloadavg()
    result["claim"] = {"limit_ms": 20.0, "met": new["decode_resample_ms"] <= 20.0}
    print(f"{len(paths)} ESC-10 clips, 5 s Ogg at 44.1 kHz -> 16 kHz, one at a time "
          f"(load average {result['load_average'][0]:.1f}):")
    for name in ("soundfile_soxr", "tensorflow_io"):
        value = result[name]
        if isinstance(value, str):
            print(f"  {name}: {value}")
            continue
        print(f"  {name:>15}: decode {value['decode_ms']:.1f} ms, resample "
              f"{value['resample_ms']:.1f} ms, both {value['decode_resample_ms']:.1f} ms")
    for name, q in result["quality"].items():
        print(f"  {name:>15} resampler: SNR {q['passband_snr_db']} dB on a 50 Hz - 7.2 kHz "
              f"sweep ({q['snr_db_below_quarter_rate']} dB up to 4 kHz), aliasing "
              f"{q['aliasing_db']} dB on an 8.8 - 22 kHz sweep; time offset "
              f"{q['time_offset_output_samples']:+.3f} output samples, gain at 7 / 7.5 kHz "
              f"{q['gain_db_at_7k_7k5'][0]} / {q['gain_db_at_7k_7k5'][1]} dB")
    print(f"Decode + resample at most 20 ms per clip: {'met' if result['claim']['met'] else 'NOT met'}")
    return result


def _one_worker(data, out, epochs, seed):
    command = train_command(data, out, epochs, ["--batch-size", "32", "--seed", str(seed)])
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    return json.loads((out / "metrics.json").read_text())


def _two_workers(data, out, epochs, seed):
    from keras_speechmix.training.multiworker import loopback_tf_configs

    command = ["--batch-size", "32", "--seed", str(seed)]
    processes = [subprocess.Popen(
        train_command(data, Path(f"{out}{i}"), epochs, command), cwd=REPO,
        env=dict(os.environ, TF_CONFIG=config),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i, config in enumerate(loopback_tf_configs(2))]
    for p in processes:
        stdout, stderr = p.communicate()
        if p.returncode:
            raise SystemExit(stdout[-2000:] + stderr[-2000:])
    return json.loads((Path(f"{out}0") / "metrics.json").read_text())


def workers(args, work):
    from keras_speechmix.audio import synth

    data = synth.synthesize_digits(num_speakers=args.speakers, takes_per_speaker=args.takes)
    runs = {"1 worker, seed 0": _one_worker(data, work / "one0", args.epochs, 0),
            "1 worker, seed 1": _one_worker(data, work / "one1", args.epochs, 1),
            "2 workers, seed 0": _two_workers(data, work / "two", args.epochs, 0)}
    names = list(runs)
    losses = [runs[n]["history"]["loss"] for n in names]
    print(f"{'epoch':>6} " + " ".join(f"{n:>18}" for n in names))
    for epoch in range(0, len(losses[0]), max(1, len(losses[0]) // 10)):
        print(f"{epoch + 1:>6} " + " ".join(f"{loss[epoch]:>18.3f}" for loss in losses))
    tail = max(1, len(losses[0]) // 5)
    last = [float(np.mean(loss[-tail:])) for loss in losses]
    seed_gap = abs(last[1] - last[0]) / last[0]
    worker_gap = abs(last[2] - last[0]) / last[0]
    print(f"\nmean loss over the last {tail} epochs: " + ", ".join(
        f"{n} {v:.3f}" for n, v in zip(names, last)))
    print(f"2 workers vs 1: {100 * worker_gap:.1f} % apart; another seed on 1 worker: "
          f"{100 * seed_gap:.1f} % apart. Test accuracy: " + ", ".join(
              f"{n} {100 * runs[n]['test_accuracy']:.1f} %" for n in names))
    return {"runs": [{"run": n, "workers": runs[n]["workers"], "loss": runs[n]["history"]["loss"],
                      "test_accuracy": runs[n]["test_accuracy"], "seconds": runs[n]["seconds"]}
                     for n in names],
            "claim": {"last_epochs": tail, "worker_gap": round(worker_gap, 4),
                      "seed_gap": round(seed_gap, 4), "limit": 0.10,
                      "met": bool(worker_gap < 0.10)}}


def _portable(value):
    """A path as the results may name it: relative to the checkout (data in
    ../shared), or "<scratch>" for a folder elsewhere on this machine."""
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    relative = os.path.relpath(value, REPO)
    return relative if not relative.startswith("../..") else "<scratch>"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    for name in ("memory", "throughput", "workers", "decode", "tiny"):
        mode.add_argument(f"--{name}", action="store_true")
    parser.add_argument("--sizes", type=int, nargs=2, default=[2000, 20000])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--decode-files", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--speakers", type=int, default=12)
    parser.add_argument("--takes", type=int, default=2)
    parser.add_argument("--data-root", default=str(common.DEFAULT_DATA))
    parser.add_argument("--work", default=None, help="folder for the synthesised clips")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="speechmix-streaming-"))
    if args.tiny:
        args.sizes, args.batches, args.steps, args.decode_files = [40, 80], 3, 2, 5
        args.epochs, args.speakers, args.takes = 1, 2, 1
        payload = {"memory": memory(args, work),
                   "throughput": throughput(args, work),
                   "workers": workers(args, work)}
        if (Path(args.data_root) / "esc10" / "meta.csv").exists():
            payload["decode"] = decode(args, work)
        name = "tiny"
    else:
        name = next(m for m in ("memory", "throughput", "workers", "decode")
                    if getattr(args, m))
        payload = globals()[name](args, work)
    out = Path(args.out or REPO / "results" / f"streaming_{name}.json")
    common.write_json(out, {"mode": name,
                            "config": {k: _portable(v) for k, v in vars(args).items()},
                            "command": " ".join(_portable(a) for a in sys.argv),
                            "device": common.device_info("cpu"), **payload})
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
