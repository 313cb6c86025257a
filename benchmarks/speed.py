"""Speed benchmark: SpeechMix's cost per training step and in the pipeline.

1. Training-step time of one model with and without SpeechMix, on the same
   batch, interleaved in one process: `model.train_on_batch(x, y)` (plain:
   every `HiddenMixup` is the identity) against
   `SpeechMix(model).train_on_batch((x, plan), y)` with plans that force each
   mixing point in turn (a fixed one-hot `point`) and a plan with no active
   point. The variants are timed round-robin (the order rotates each round)
   so that load from other processes hits all of them alike; the table gives
   each variant's median step time and its ratio to the plain median
   (target <= 1.03x). Log-mel CNN (1 s at 16 kHz) and EnvNet-v2 (short input,
   17,502 or 24,000 samples), batch 32.
2. Pipeline throughput (batches/s) on decoded clips held in memory:
   plain batching, `keras.layers.MixUp` mapped over the batches (waveforms
   reshaped to (B, T, 1, 1) images, one-hot labels), `partner_batches` with
   the beta ratio and with BC's gain-aware ratio (which measures A-weighted
   gains), compared with the model's consumption rate (training steps/s of
   the plain model). Target: pipeline >= 5x the model's rate.

Modes: --tiny (seconds, for the test), --quick (<= 5 min on 2 CPU cores),
--full. --device auto|cpu|gpu picks and records the device (on a GPU
machine, run `python benchmarks/speed.py --quick --device gpu`).

    python benchmarks/speed.py --quick --out results/speed.json
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import keras  # noqa: E402
from step_time import (LOGMEL_POINTS, print_pydataset_rates,  # noqa: E402
                       pydataset_rates, step_times)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_speechmix import partner_batches  # noqa: E402
from keras_speechmix.audio import datasets

MODES = {
    # rounds: interleaved rounds of every variant; warmup: untimed calls each.
    "tiny": dict(logmel=dict(rounds=4, warmup=1, length=4000, sample_rate=8000, batch=8),
                 envnet=None, pipeline_batches=10, clips="random", batch=8),
    "quick": dict(logmel=dict(rounds=60, warmup=3, length=16000, sample_rate=16000, batch=32),
                  envnet=dict(rounds=16, warmup=2, length=17502, batch=32),
                  pipeline_batches=150, clips="synth", batch=32),
    "full": dict(logmel=dict(rounds=200, warmup=5, length=16000, sample_rate=16000, batch=32),
                 envnet=dict(rounds=40, warmup=3, length=24000, batch=32),
                 pipeline_batches=600, clips="synth", batch=32),
}


def clips_for(kind, sample_rate, length):
    if kind == "random":
        rng = np.random.default_rng(0)
        waves = [(0.1 * rng.standard_normal(length)).astype(np.float32) for _ in range(64)]
        return datasets.ClipSet(waves, np.arange(64) % 10, [str(i) for i in range(10)],
                                sample_rate), "random noise clips (64, in memory)"
    try:
        clips = common.load_synth()
        if clips.sample_rate != sample_rate:
            raise ValueError("rate")
        return clips, f"built-in synthesised digits ({len(clips)} clips, {sample_rate} Hz)"
    except Exception as error:  # noqa: BLE001 - fall back to noise
        print(f"[pipeline] synthesised set unavailable ({error}); using noise", flush=True)
        return clips_for("random", sample_rate, length)


def pipeline_rates(clips, length, batch, num_batches, num_points):
    num_classes = clips.num_classes
    sr = clips.sample_rate

    def source():
        return clips.to_dataset(length, training=True, seed=0).shuffle(
            len(clips), seed=0, reshuffle_each_iteration=True).repeat()

    mixup = keras.layers.MixUp(alpha=1.0, seed=0)

    def keras_mixup(x, y):
        out = mixup({"images": x[:, :, None, None],
                     "labels": tf.one_hot(y, num_classes)})
        return tf.reshape(out["images"], tf.shape(x)), out["labels"]

    pipelines = {
        "batch_only": lambda: source().batch(batch, drop_remainder=True).map(
            lambda x, y: (x, tf.one_hot(y, num_classes)),
            num_parallel_calls=tf.data.AUTOTUNE),
        "keras_mixup": lambda: source().batch(batch, drop_remainder=True).map(
            keras_mixup, num_parallel_calls=tf.data.AUTOTUNE),
        "partner_batches": lambda: partner_batches(
            source(), batch, num_classes=num_classes, mix_points=num_points, seed=0),
        "partner_batches_bc": lambda: partner_batches(
            source(), batch, num_classes=num_classes, mix_points=num_points,
            ratio="bc", partners="different_class", sample_rate=sr, seed=0),
    }
    rates = {}
    for name, make in pipelines.items():
        iterator = iter(make().prefetch(tf.data.AUTOTUNE))
        for _ in range(5):
            next(iterator)
        t0 = time.perf_counter()
        for _ in range(num_batches):
            next(iterator)
        seconds = time.perf_counter() - t0
        rates[name] = {"batches_per_s": num_batches / seconds,
                       "clips_per_s": num_batches * batch / seconds,
                       "batches": num_batches, "seconds": round(seconds, 2)}
        del iterator
    return rates


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    for name in MODES:
        mode.add_argument(f"--{name}", action="store_const", dest="mode", const=name)
    parser.add_argument("--out", default=None, help="JSON path (default results/speed[_mode].json)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    parser.add_argument("--jit", default="auto", choices=("auto", "on", "off"),
                        help="XLA (auto: on for GPUs, off for CPUs)")
    parser.add_argument("--no-envnet", action="store_true")
    args = parser.parse_args(argv)
    args.mode = args.mode or "quick"
    if args.device == "cpu":
        common.hide_gpus()
    device = common.device_info(args.device)
    jit = device["uses_gpu"] if args.jit == "auto" else args.jit == "on"
    cfg = MODES[args.mode]
    out = Path(args.out or ("results/speed.json" if args.mode == "quick"
                            else f"results/speed_{args.mode}.json"))
    print(f"[config] mode={args.mode} device={device['device']} jit_compile={jit}", flush=True)
    started = time.perf_counter()
    payload = {"config": {"mode": args.mode, "jit_compile": jit, **{
        k: v for k, v in cfg.items()}, "command": " ".join(sys.argv),
        "targets": {"step_ratio_max": 1.03, "pipeline_over_model_min": 5.0,
                    "pydataset_time_ratio_max": 1.05}},
        "device": device, "step_time": {}}
    nets = [("logmel", cfg["logmel"])]
    if cfg["envnet"] and not args.no_envnet:
        nets.append(("envnet", cfg["envnet"]))
    for net, net_cfg in nets:
        result = step_times(net, net_cfg, jit=jit)
        payload["step_time"][net] = result
        print(f"[step] {net}: {result['seconds']} s", flush=True)
        common.write_json(out, payload)
    log_cfg = cfg["logmel"]
    clips, described = clips_for(cfg["clips"], log_cfg["sample_rate"], log_cfg["length"])
    rates = pipeline_rates(clips, log_cfg["length"], cfg["batch"], cfg["pipeline_batches"],
                           len(LOGMEL_POINTS) - 1)
    model_rate = payload["step_time"]["logmel"]["plain_steps_per_s"]
    payload["pipeline"] = {
        "data": described, "input_length": log_cfg["length"], "batch_size": cfg["batch"],
        "rates": rates, "model_steps_per_s": model_rate,
        "pipeline_over_model": {k: v["batches_per_s"] / model_rate for k, v in rates.items()},
        "partner_over_keras_mixup": rates["partner_batches"]["batches_per_s"]
        / rates["keras_mixup"]["batches_per_s"],
    }
    # The same clips as fixed-length arrays (cut or zero-padded), for the
    # PyDataset loaders.
    length = log_cfg["length"]
    x = np.stack([np.pad(w[:length], (0, max(0, length - len(w))))
                  for w in clips.waveforms]).astype(np.float32)
    loaders = pydataset_rates(x, np.asarray(clips.labels), cfg["batch"], clips.num_classes,
                              len(LOGMEL_POINTS) - 1, cfg["pipeline_batches"],
                              sample_rate=clips.sample_rate)
    payload["pydataset"] = {
        **loaders, "data": described, "model_steps_per_s": model_rate,
        "over_model": {k: v["batches_per_s"] / model_rate
                       for k, v in loaders["rates"].items()},
    }
    payload["total_seconds"] = round(time.perf_counter() - started, 1)
    common.write_json(out, payload)

    print(f"\nTraining-step time, batch {cfg['batch']}, device {device['device']}, "
          f"jit_compile={jit} (median of interleaved steps; ratio to plain):")
    print(f"{'net':7s} {'variant':15s} {'median ms':>10s} {'p10-p90 ms':>14s} {'ratio':>7s} {'paired':>7s}")
    for net, result in payload["step_time"].items():
        for name, v in result["variants"].items():
            print(f"{net:7s} {name:15s} {1000 * v['median_s']:10.1f} "
                  f"{1000 * v['p10_s']:6.0f}-{1000 * v['p90_s']:<6.0f} "
                  f"{v['ratio_to_plain']:7.3f} {v['paired_ratio_median']:7.3f}")
    print(f"\nPipeline throughput ({described}, {log_cfg['length']} samples, batch {cfg['batch']}):")
    print(f"{'pipeline':20s} {'batches/s':>10s} {'x model':>8s}")
    for name, v in rates.items():
        print(f"{name:20s} {v['batches_per_s']:10.1f} "
              f"{payload['pipeline']['pipeline_over_model'][name]:8.1f}")
    print(f"{'model (plain fit)':20s} {model_rate:10.1f} {1.0:8.1f}")
    print_pydataset_rates(loaders, model_rate)
    print(f"\ntotal {payload['total_seconds']} s; JSON: {out}")
    return payload


if __name__ == "__main__":
    main()
