"""Speed benchmark: every method's step against a plain step, and the pipeline.

1. Training-step time of every mixing method (input mixup, BC learning,
   Manifold Mixup, SpeechMix) on every reference network of `speechmix
   train --model` (logmel_fc, logmel, piczak, envnet, at their training
   crops) and on a small CNN whose step is short: for each method, the
   network the recipe builds for it (`recipe.build_model`) is stepped
   plainly (`model.train_on_batch`, every `HiddenMixup` the identity) and
   through the `SpeechMix` view with the plans `PartnerBatches` draws for
   the method, on the same batches, all variants interleaved in rotating
   order so that load from elsewhere hits them alike
   (`step_time.method_step_times`). The active point goes round the
   method's points in turn; the table gives each method's mean over its
   points of each point's median step, over the plain median (an epoch's
   cost, the point being drawn uniformly per batch), and its 95 % bootstrap
   interval over rounds; rounds go on until every interval is within +-0.01
   (or a time cap). Target: <= 1.03x.
   This part runs on any Keras backend (`KERAS_BACKEND=jax python
   benchmarks/speed.py --quick`).
2. With TensorFlow: pipeline throughput (batches/s) on decoded clips held in
   memory: plain batching, `keras.layers.MixUp` mapped over the batches,
   `partner_batches` with the beta ratio and with BC's gain-aware ratio,
   and the `PartnerBatches` PyDataset, against the default network's rate
   of plain steps. Target: pipeline >= 5x the model's rate.

Modes: --tiny (seconds, for the test), --quick (every network, about 15
min on 2 CPU cores alone), --full (longer caps). --device auto|cpu|gpu
picks the device with TensorFlow.

    python benchmarks/speed.py --quick --out results/speed.json
    KERAS_BACKEND=jax python benchmarks/speed.py --quick --out results/speed_jax.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from step_time import (LOGMEL_POINTS, STEP_NETWORKS, backend_device,  # noqa: E402
                       method_step_times, print_method_steps, print_pydataset_rates,
                       pydataset_rates)

TENSORFLOW = keras.backend.backend() == "tensorflow"
if TENSORFLOW:
    import common  # noqa: E402
    import tensorflow as tf  # noqa: E402

    from keras_speechmix import partner_batches  # noqa: E402
    from keras_speechmix.audio import datasets  # noqa: E402

    # Each method's first steps trace a function; the retracing notices say
    # nothing about the timed steps.
    tf.get_logger().setLevel("ERROR")

# steps: method_step_times arguments per network; pipeline_batches: batches
# timed per pipeline.
MODES = {
    "tiny": dict(networks=("small_cnn",), steps=dict(warmup=1, min_rounds=2, max_rounds=2),
                 pipeline_batches=10, clips="random", batch=8, length=4000,
                 sample_rate=8000),
    "quick": dict(networks=STEP_NETWORKS,
                  steps=dict(warmup=3, min_rounds=20, max_rounds=400, max_seconds=240.0),
                  pipeline_batches=150, clips="synth", batch=32, length=16000,
                  sample_rate=16000),
    "full": dict(networks=STEP_NETWORKS,
                 steps=dict(warmup=5, min_rounds=40, max_rounds=1000, max_seconds=900.0),
                 pipeline_batches=600, clips="synth", batch=32, length=16000,
                 sample_rate=16000),
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


def _write(out, payload):
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=float))


def _device(want):
    if not TENSORFLOW:
        return {"device": backend_device(), "backend": keras.backend.backend(),
                "keras": keras.__version__, "uses_gpu": not backend_device().startswith("cpu")}
    if want == "cpu":
        common.hide_gpus()
    return {**common.device_info(want), "backend": "tensorflow"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    for name in MODES:
        mode.add_argument(f"--{name}", action="store_const", dest="mode", const=name)
    parser.add_argument("--out", default=None, help="JSON path (default results/speed[_mode].json)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    parser.add_argument("--jit", default="auto", choices=("auto", "on", "off"),
                        help="XLA (auto: on for JAX and for GPUs, off for TensorFlow on CPUs)")
    parser.add_argument("--networks", nargs="+", choices=STEP_NETWORKS, default=None,
                        help="networks to step (default: the mode's)")
    args = parser.parse_args(argv)
    args.mode = args.mode or "quick"
    device = _device(args.device)
    # XLA made TensorFlow's CPU step slower (the recipe keeps it for GPUs);
    # JAX is always compiled (uncompiled JAX runs op by op, as no one trains).
    auto = device["uses_gpu"] or keras.backend.backend() == "jax"
    jit = auto if args.jit == "auto" else args.jit == "on"
    cfg = MODES[args.mode]
    networks = args.networks or cfg["networks"]
    out = Path(args.out or ("results/speed.json" if args.mode == "quick"
                            else f"results/speed_{args.mode}.json"))
    print(f"[config] mode={args.mode} backend={keras.backend.backend()} "
          f"device={device['device']} jit_compile={jit}", flush=True)
    started = time.perf_counter()
    payload = {"config": {"mode": args.mode, "jit_compile": jit, "networks": list(networks),
                          **{k: v for k, v in cfg.items() if k != "networks"},
                          "command": " ".join(sys.argv),
                          "targets": {"step_ratio_max": 1.03, "ratio_half_width_max": 0.01,
                                      "pipeline_over_model_min": 5.0}},
               "device": device, "step_time": {}}
    for network in networks:
        result = method_step_times(network, batch=cfg["batch"] if args.mode == "tiny" else 32,
                                   jit=jit, **cfg["steps"])
        payload["step_time"][network] = result
        print(f"[step] {network}: {result['rounds']} rounds, {result['seconds']} s", flush=True)
        _write(out, payload)
    ratios = [v["ratio"] for r in payload["step_time"].values() for v in r["methods"].values()]
    payload["worst_step_ratio"] = max(ratios)
    if TENSORFLOW:
        _pipeline(payload, cfg)
    payload["total_seconds"] = round(time.perf_counter() - started, 1)
    _write(out, payload)

    print(f"\nTraining step of each method against a plain step of the same network, "
          f"batch {cfg['batch'] if args.mode == 'tiny' else 32}, {device['device']}, "
          f"jit_compile={jit} (mean over the mixing points of each point's median "
          "step, over the plain median):")
    print_method_steps(payload["step_time"].values())
    print(f"worst ratio {payload['worst_step_ratio']:.3f} (target <= 1.03)")
    if TENSORFLOW:
        pipeline = payload["pipeline"]
        print(f"\nPipeline throughput ({pipeline['data']}, {pipeline['input_length']} samples, "
              f"batch {pipeline['batch_size']}):")
        print(f"{'pipeline':20s} {'batches/s':>10s} {'x model':>8s}")
        for name, v in pipeline["rates"].items():
            print(f"{name:20s} {v['batches_per_s']:10.1f} "
                  f"{pipeline['pipeline_over_model'][name]:8.1f}")
        print(f"{'model (plain step)':20s} {pipeline['model_steps_per_s']:10.1f} {1.0:8.1f}")
        print_pydataset_rates(payload["pydataset"], pipeline["model_steps_per_s"])
    print(f"\ntotal {payload['total_seconds']} s; JSON: {out}")
    return payload


def _pipeline(payload, cfg):
    """Pipeline and PyDataset rates against the default network's plain steps/s."""
    default = "logmel_fc" if "logmel_fc" in payload["step_time"] else next(iter(payload["step_time"]))
    plain_ms = payload["step_time"][default]["methods"]["speechmix"]["plain_median_ms"]
    model_rate = 1000.0 / plain_ms
    clips, described = clips_for(cfg["clips"], cfg["sample_rate"], cfg["length"])
    rates = pipeline_rates(clips, cfg["length"], cfg["batch"], cfg["pipeline_batches"],
                           len(LOGMEL_POINTS) - 1)
    payload["pipeline"] = {
        "data": described, "input_length": cfg["length"], "batch_size": cfg["batch"],
        "rates": rates, "model": default, "model_steps_per_s": model_rate,
        "pipeline_over_model": {k: v["batches_per_s"] / model_rate for k, v in rates.items()},
        "partner_over_keras_mixup": rates["partner_batches"]["batches_per_s"]
        / rates["keras_mixup"]["batches_per_s"],
    }
    # The same clips as fixed-length arrays (cut or zero-padded), for the
    # PyDataset loaders.
    length = cfg["length"]
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


if __name__ == "__main__":
    main()
