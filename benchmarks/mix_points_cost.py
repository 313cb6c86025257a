"""Step cost of a model given mixing points by `add_mix_points`, against the original.

The model is the backbone example's classifier (`examples/finetune_backbone.py`:
waveform -> log-mel -> `keras.applications` backbone -> dense head, 1 s at
16 kHz), built the ordinary way. `add_mix_points(model, after=["logmel_norm",
"auto"])` gives the same network with points at the log-mel input and after
each backbone stage, sharing its weights. On one batch, in one process, these
are timed round-robin (the order rotates each round, so that load from other
processes hits every variant alike):

- `original`: `model.train_on_batch(x, y)`, the model as the user had it;
- `rebuilt`: the add_mix_points model's own `train_on_batch(x, y)` (every
  point the identity: the cost of the rebuilt graph alone);
- `view_no_point`: `SpeechMix(mixing).train_on_batch((x, plan), y)` with a
  plan that activates no point;
- `view_<point>`: the same with each point forced active in turn.

The JSON gives each variant's median step time, its ratio of medians to
`original` and the median of per-round paired ratios, the machine's load
(`os.getloadavg` before and after; the machine may be shared), the ratio
of the 10th percentiles (the undisturbed steps, when other jobs load the
cores) and the configuration. Target: rebuilt and view_no_point <= 1.05x original; the
active points' ratios are SpeechMix's own cost (one gather and lerp).

    python benchmarks/mix_points_cost.py                 # results/mix_points_cost.json
    python benchmarks/mix_points_cost.py --backbone EfficientNetB0 --out results/x.json
    python benchmarks/mix_points_cost.py --tiny          # seconds, for the tests
"""

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from step_time import interleaved_times, make_plan  # noqa: E402

import keras_speechmix as ksm  # noqa: E402

MODES = {
    "tiny": dict(rounds=2, warmup=1, batch=4, seconds=0.5),
    "quick": dict(rounds=30, warmup=3, batch=32, seconds=1.0),
    "full": dict(rounds=100, warmup=5, batch=32, seconds=1.0),
}


def example():
    path = common.REPO / "examples" / "finetune_backbone.py"
    spec = importlib.util.spec_from_file_location("finetune_backbone", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def forward_graph_ops(model, mixing, x):
    """Op counts of the traced training-mode forward pass, by type, where they differ.

    A figure the machine's load cannot move: without a plan every point
    should add nothing (or only `Identity` ops) to the graph.
    """
    import tensorflow as tf

    counts = {}
    for name, net in (("original", model), ("rebuilt", mixing)):
        graph = tf.function(lambda t, net=net: net(t, training=True)).get_concrete_function(
            tf.TensorSpec(x.shape, tf.float32)).graph
        counts[name] = {}
        for op in graph.get_operations():
            counts[name][op.type] = counts[name].get(op.type, 0) + 1
    kinds = sorted(set(counts["original"]) | set(counts["rebuilt"]))
    return {"original_total": sum(counts["original"].values()),
            "rebuilt_total": sum(counts["rebuilt"].values()),
            "differences": {k: [counts["original"].get(k, 0), counts["rebuilt"].get(k, 0)]
                            for k in kinds
                            if counts["original"].get(k, 0) != counts["rebuilt"].get(k, 0)}}


def step_costs(backbone, cfg, num_classes=10):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    finetune = example()
    length = int(cfg["seconds"] * finetune.SAMPLE_RATE)
    model = finetune.build_classifier(num_classes, length, backbone, weights=None,
                                      logmel_mean=-20.0, logmel_variance=400.0)
    mixing = ksm.add_mix_points(model, after=["logmel_norm", "auto"])
    points = [layer.name for layer in ksm.mix_layers(mixing)]
    view = ksm.SpeechMix(mixing)

    def loss():
        return keras.losses.CategoricalCrossentropy(from_logits=True)

    for net in (model, mixing, view):
        net.compile(keras.optimizers.Adam(1e-5), loss())
    batch = cfg["batch"]
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((batch, length))).astype(np.float32)
    y = np.eye(num_classes, dtype=np.float32)[np.arange(batch) % num_classes]
    graph_ops = forward_graph_ops(model, mixing, x)
    variants = {"original": lambda: model.train_on_batch(x, y),
                "rebuilt": lambda: mixing.train_on_batch(x, y)}
    plans = {"view_no_point": make_plan(batch, len(points), None)}
    for k, name in enumerate(points):
        plans[f"view_{name.removeprefix('mix_after_')}"] = make_plan(batch, len(points), k)
    for label, plan in plans.items():
        variants[label] = (lambda p: (lambda: view.train_on_batch((x, p), y)))(plan)
    names = list(variants)
    load_before = os.getloadavg()
    started = time.perf_counter()
    times = interleaved_times(variants, cfg["warmup"], cfg["rounds"])
    plain = np.asarray(times["original"])
    result = {"backbone": backbone, "batch_size": batch, "input_length": length,
              "mix_points": points, "params": int(model.count_params()),
              "seconds": round(time.perf_counter() - started, 1),
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "forward_graph_ops": graph_ops,
              "variants": {}}
    for name in names:
        t = np.asarray(times[name])
        result["variants"][name] = {
            "median_s": float(np.median(t)), "p10_s": float(np.percentile(t, 10)),
            "p90_s": float(np.percentile(t, 90)), "min_s": float(t.min()), "n": int(t.size),
            "ratio_to_original": float(np.median(t) / np.median(plain)),
            "paired_ratio_median": float(np.median(t / plain)),
            # On a loaded machine the fastest steps are the undisturbed ones.
            "p10_ratio": float(np.percentile(t, 10) / np.percentile(plain, 10)),
        }
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    for name in MODES:
        mode.add_argument(f"--{name}", action="store_const", dest="mode", const=name)
    parser.add_argument("--backbone", default="MobileNetV3Small")
    parser.add_argument("--out", default=None,
                        help="JSON path (default results/mix_points_cost[_mode].json)")
    args = parser.parse_args(argv)
    args.mode = args.mode or "quick"
    common.hide_gpus()  # the target is a CPU figure
    device = common.device_info("cpu")
    cfg = MODES[args.mode]
    out = Path(args.out or ("results/mix_points_cost.json" if args.mode == "quick"
                            else f"results/mix_points_cost_{args.mode}.json"))
    print(f"[config] mode={args.mode} backbone={args.backbone} device={device['device']} "
          f"load={os.getloadavg()}", flush=True)
    result = step_costs(args.backbone, cfg)
    payload = {"config": {"mode": args.mode, **cfg, "command": " ".join(sys.argv),
                          "targets": {"rebuilt_and_no_point_ratio_max": 1.05}},
               "device": device, "step_time": result}
    common.write_json(out, payload)
    print(f"\nTraining-step time, {args.backbone} on log-mels, batch {cfg['batch']}, "
          f"{result['input_length']} samples, {cfg['rounds']} interleaved rounds "
          f"(load {result['loadavg_before'][0]:.1f} -> {result['loadavg_after'][0]:.1f}):")
    print(f"{'variant':32s} {'median ms':>10s} {'p10-p90 ms':>14s} {'ratio':>7s} "
          f"{'paired':>7s} {'p10':>7s}")
    for name, v in result["variants"].items():
        print(f"{name:32s} {1000 * v['median_s']:10.1f} "
              f"{1000 * v['p10_s']:6.0f}-{1000 * v['p90_s']:<6.0f} "
              f"{v['ratio_to_original']:7.3f} {v['paired_ratio_median']:7.3f} "
              f"{v['p10_ratio']:7.3f}")
    ops = result["forward_graph_ops"]
    print(f"training-mode forward graph: {ops['original_total']} ops original, "
          f"{ops['rebuilt_total']} rebuilt; differing op types (original, rebuilt): "
          f"{ops['differences'] or 'none'}")
    print(f"JSON: {out}")
    return payload


if __name__ == "__main__":
    main()
