"""Training-step time with and without SpeechMix, on any Keras backend.

The step-time half of `speed.py`, kept free of TensorFlow so that it also
runs where only Keras and JAX (or PyTorch) are installed, such as a GPU
machine without TensorFlow:

    KERAS_BACKEND=jax python benchmarks/step_time.py --rounds 40 --out step_time.json

Each variant (plain `model.train_on_batch`, and the SpeechMix view with each
mixing point forced active, or none) is timed round-robin on the same batch;
the JSON gives medians and ratios to plain.

It then times `PartnerBatches` (the PyDataset that draws plans in NumPy)
against a plain PyDataset over the same arrays (`pydataset_rates`), so one
run gives the loader's batches/s beside the model's steps/s.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_speechmix import PartnerBatches, SpeechMix, models  # noqa: E402
from keras_speechmix.training import recipe  # noqa: E402

LOGMEL_POINTS = ("input", "block1", "block2", "block3", "pooled")
ENVNET_POINTS = (0, 1, 2, 3, 4)


def interleaved_times(variants, warmup, rounds):
    """Seconds per call of each `variants[name]()`, calls interleaved.

    Each function is called `warmup` times first (tracing), then once per
    round in an order rotated each round, so that a slow spell of a shared
    machine falls on every variant alike. Each function must return only
    when its step has finished (e.g. `train_on_batch`, which returns Python
    floats).
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def make_plan(batch, num_points, point, seed=0):
    """A plan with `point` active (None: no active point), fixed partners."""
    rng = np.random.default_rng(seed)
    onehot = np.zeros((batch, num_points), np.int32)
    if point is not None:
        onehot[:, point] = 1
    return {"partner": rng.permutation(batch).astype(np.int32),
            "ratio": rng.uniform(size=batch).astype(np.float32),
            "point": onehot}


def step_times(net, cfg, num_classes=10, jit=False, device_inputs=False):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    batch, length = cfg["batch"], cfg["length"]
    if net == "logmel":
        points = LOGMEL_POINTS
        model = models.logmel_cnn(num_classes, sample_rate=cfg["sample_rate"],
                                  input_length=length, mix_points=points)
    else:
        points = ENVNET_POINTS
        model = models.envnet_v2(num_classes, input_length=length, mix_points=points)
    view = SpeechMix(model)
    model.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy", jit_compile=jit)
    view.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy", jit_compile=jit)
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((batch, length))).astype(np.float32)
    y = np.eye(num_classes, dtype=np.float32)[np.arange(batch) % num_classes]
    variants = {"plain": lambda: model.train_on_batch(x, y)}
    plans = {"no_point": make_plan(batch, len(points), None)}
    for k, name in enumerate(points):
        plans[f"point_{name}"] = make_plan(batch, len(points), k)
    if device_inputs:
        # Already on the accelerator, as prefetched tf.data batches are: the
        # plan's three small host-to-device copies per step are then not timed.
        x, y = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
        plans = {k: {n: keras.ops.convert_to_tensor(a) for n, a in p.items()}
                 for k, p in plans.items()}
    for label, plan in plans.items():
        variants[label] = (lambda p: (lambda: view.train_on_batch((x, p), y)))(plan)
    names = list(variants)
    started = time.perf_counter()
    times = interleaved_times(variants, cfg["warmup"], cfg["rounds"])
    plain = np.median(times["plain"])
    result = {"net": net, "batch_size": batch, "input_length": length,
              "mix_points": [str(p) for p in points], "rounds": cfg["rounds"],
              "warmup": cfg["warmup"], "params": int(model.count_params()),
              "seconds": round(time.perf_counter() - started, 1), "variants": {}}
    for name in names:
        t = np.asarray(times[name])
        paired = t / np.asarray(times["plain"])
        result["variants"][name] = {
            "median_s": float(np.median(t)), "p10_s": float(np.percentile(t, 10)),
            "p90_s": float(np.percentile(t, 90)), "n": int(t.size),
            "ratio_to_plain": float(np.median(t) / plain),
            "paired_ratio_median": float(np.median(paired)),
        }
    result["worst_mixing_ratio"] = max(
        v["ratio_to_plain"] for k, v in result["variants"].items() if k.startswith("point_"))
    result["plain_steps_per_s"] = float(1.0 / plain)
    return result


# The reference networks of `speechmix train --model` at their training crop,
# and a small CNN whose step is short (a few tens of ms on 2 CPU cores), where
# a step's fixed costs (plan handling, the `cond`) show most.
STEP_NETWORKS = ("small_cnn", "logmel_fc", "logmel", "piczak", "envnet")
MIXING_METHODS = ("input", "bc", "manifold", "speechmix")


def _small_cnn(method, num_classes):
    points = recipe.method_points(recipe.NETWORKS["logmel"], method)
    model = models.logmel_cnn(num_classes, sample_rate=8000, input_length=8000,
                              num_mel_bins=32, filters=(8, 16, 16), mix_points=points,
                              dropout=0.0, hidden_gain=recipe.HIDDEN_GAINS.get(method, "plan"),
                              name="small_cnn")
    return model, 8000, 8000


def method_model(network, method, num_classes=10):
    """`(model, sample_rate, input_length)`: `network` as the recipe builds it
    for `method` (`recipe.build_model`), at the network's training crop."""
    if network == "small_cnn":
        return _small_cnn(method, num_classes)
    spec = recipe.NETWORKS[network]
    length = int(round(spec["seconds"] * spec["sample_rate"]))
    model = recipe.build_model(method, num_classes, spec["sample_rate"], length, model=network)
    return model, spec["sample_rate"], length


def point_medians(mixed, points):
    """Median step of each active point that has timed steps, in point order."""
    mixed, points = np.asarray(mixed), np.asarray(points)
    return [float(np.median(mixed[points == k])) for k in np.unique(points)]


def ratio_spread(mixed, plain, points=None, draws=2000, seed=0):
    """Ratio of a mixed step's cost to a plain step's, and its 95 % interval,
    by a bootstrap over rounds (a round's two times are resampled together).

    Without `points`: `median(mixed) / median(plain)`. With `points` (the
    active point of each mixed step): the mean over the points of each
    point's median step, over `median(plain)`. Training draws the point
    uniformly per batch, so an epoch costs the mean over points; a median
    over steps mixed at different points would report one point's cost,
    whichever sits in the middle.
    """
    mixed, plain = np.asarray(mixed), np.asarray(plain)
    labels = np.zeros(len(mixed), int) if points is None else np.asarray(points)
    if labels.shape != mixed.shape:
        raise ValueError(f"ratio_spread: {len(labels)} points for {len(mixed)} mixed steps")

    def cost(rows):
        return np.mean(point_medians(mixed[rows], labels[rows])) / np.median(plain[rows])

    rng = np.random.default_rng(seed)
    ratios = [cost(rng.integers(0, len(mixed), size=len(mixed))) for _ in range(draws)]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(cost(np.arange(len(mixed)))), float(low), float(high)


def method_step_times(network, batch=32, warmup=3, min_rounds=20, max_rounds=400,
                      max_seconds=300.0, target_half_width=0.01, methods=MIXING_METHODS,
                      num_classes=10, jit=False, plans=8):
    """Each method's training step against a plain step of the same network.

    For every method, the network it trains (its mixing points and gains,
    `recipe.build_model`) is stepped two ways on the same batches: plainly
    (`model.train_on_batch`, every `HiddenMixup` the identity) and through
    the `SpeechMix` view with the plans `PartnerBatches` draws for the method
    (its partners, ratios and, for BC, gains), cycling over `plans` batches
    (rounded up to a multiple of the number of points) held as tensors, as
    `fit`'s input pipeline delivers them. The active point, which training
    draws uniformly per batch, goes round the points in turn, so every point
    is timed equally often; a method's mixed cost is the mean over its
    points of each point's median step (`ratio_spread`). All variants are
    interleaved in rotating order (`interleaved_times`); rounds go on until
    every method's 95 % interval of the ratio is within
    +-`target_half_width`, or `max_rounds` or `max_seconds` is reached.
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    variants, built = {}, {}
    rng = np.random.default_rng(0)
    active = {}
    for method in methods:
        model, rate, length = method_model(network, method, num_classes)
        view = SpeechMix(model)
        points = view.num_mix_points
        count = points * -(-plans // points)
        model.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy", jit_compile=jit)
        view.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy", jit_compile=jit)
        x = (0.1 * rng.standard_normal((batch * count, length))).astype(np.float32)
        y = np.arange(batch * count) % num_classes
        kwargs = dict(recipe.METHODS[method])
        if kwargs.get("ratio") == "bc":
            kwargs["sample_rate"] = rate
        loader = PartnerBatches(x, y, batch, num_classes=num_classes,
                                mix_points=points, seed=0, **kwargs)
        # Tensors, as `fit` hands its step: there the input pipeline turns
        # host arrays into tensors ahead of the step (the pipeline table
        # times that); converting here would charge the view's plan arrays
        # to its step (0.7 ms of a 22 ms small-CNN step against 0.4 ms for
        # a plain batch's).
        batches = []
        for i in range(count):
            (xb, plan), yb = loader[i]
            plan = dict(plan)
            plan["point"] = np.zeros_like(plan["point"])
            plan["point"][:, i % points] = 1
            batches.append(keras.tree.map_structure(keras.ops.convert_to_tensor,
                                                    ((xb, plan), yb)))
        calls = {"plain": 0, "mixed": 0}
        active[method] = used = []

        def plain(model=model, batches=batches, calls=calls):
            (xb, _), yb = batches[calls["plain"] % len(batches)]
            calls["plain"] += 1
            model.train_on_batch(xb, yb)

        def mixed(view=view, batches=batches, calls=calls, used=used, points=points):
            inputs, yb = batches[calls["mixed"] % len(batches)]
            # Batch i mixes at point i % points, and len(batches) is a
            # multiple of points.
            used.append(calls["mixed"] % points)
            calls["mixed"] += 1
            view.train_on_batch(inputs, yb)

        variants[f"{method}/plain"], variants[f"{method}/mixed"] = plain, mixed
        built[method] = dict(params=int(model.count_params()), input_length=length,
                             sample_rate=rate, mix_points=view.num_mix_points)
    started = time.perf_counter()
    # Consecutive rounds go round the points: enough of them times each one.
    min_rounds = max(min_rounds, *(b["mix_points"] for b in built.values()))
    max_rounds = max(max_rounds, min_rounds)
    times = interleaved_times(variants, warmup, min_rounds)

    def spreads():
        # The warm-up calls drew points too; the timed ones follow them.
        return {m: ratio_spread(times[f"{m}/mixed"], times[f"{m}/plain"],
                                active[m][warmup:]) for m in methods}

    while True:
        current = spreads()
        rounds = len(times[f"{methods[0]}/plain"])
        wide = max((high - low) / 2 for _, low, high in current.values())
        if (wide <= target_half_width or rounds >= max_rounds
                or time.perf_counter() - started >= max_seconds):
            break
        more = interleaved_times(variants, 0, min(10, max_rounds - rounds))
        for name in times:
            times[name].extend(more[name])
    result = {"network": network, "batch_size": batch, "rounds": rounds,
              "seconds": round(time.perf_counter() - started, 1), "methods": {}}
    for method, (ratio, low, high) in current.items():
        per_point = [1000 * t for t in point_medians(times[f"{method}/mixed"],
                                                     active[method][warmup:])]
        result["methods"][method] = {
            **built[method], "ratio": ratio, "ratio_low": low, "ratio_high": high,
            "half_width": (high - low) / 2,
            "plain_median_ms": 1000 * float(np.median(times[f"{method}/plain"])),
            # The mean over the points of each point's median step.
            "mixed_ms": float(np.mean(per_point)),
            "point_median_ms": per_point,
        }
    return result


def print_method_steps(results, target=1.03):
    """Prints `method_step_times` results as one table."""
    print(f"{'network':10s} {'method':10s} {'plain ms':>9s} {'mixed ms':>9s} "
          f"{'ratio':>6s} {'95% interval':>14s} {'rounds':>6s}  target")
    for result in results:
        for method, v in result["methods"].items():
            print(f"{result['network']:10s} {method:10s} {v['plain_median_ms']:9.1f} "
                  f"{v['mixed_ms']:9.1f} {v['ratio']:6.3f} "
                  f"{v['ratio_low']:6.3f}-{v['ratio_high']:<7.3f} {result['rounds']:6d}  "
                  f"{'met' if v['ratio'] <= target else 'MISSED'}")


class PlainBatches(keras.utils.PyDataset):
    """What `fit(x, y)` feeds, as a PyDataset: shuffled rows, one-hot labels."""

    def __init__(self, x, y, batch_size, num_classes, seed=0):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.eye = np.eye(num_classes, dtype=np.float32)
        self.epoch = 0
        self.order = np.random.default_rng([seed, 0]).permutation(len(y))

    def __len__(self):
        return len(self.y) // self.batch_size

    def on_epoch_end(self):
        self.epoch += 1
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.y))

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.x[rows], self.eye[self.y[rows]]


def pydataset_rates(x, y, batch, num_classes, mix_points, num_batches, sample_rate=None):
    """Times batches of `PartnerBatches` against `PlainBatches` on the same arrays.

    Each loader first runs one whole epoch untimed (BC gains are measured
    once per clip then), then `num_batches` batches of each are fetched
    round-robin, so load from other processes hits all alike, with epochs
    wrapping as in `fit`. Single-threaded `__getitem__` calls, as with
    `workers=1`.
    """
    loaders = {
        "plain_pydataset": PlainBatches(x, y, batch, num_classes),
        "partner_batches": PartnerBatches(
            x, y, batch, num_classes=num_classes, mix_points=mix_points, seed=0),
        "partner_batches_bc": PartnerBatches(
            x, y, batch, num_classes=num_classes, mix_points=mix_points, seed=0,
            ratio="bc", partners="different_class", sample_rate=sample_rate),
    }
    names = list(loaders)
    for loader in loaders.values():
        for index in range(len(loader)):
            loader[index]
        loader.on_epoch_end()
    times = {name: [] for name in names}
    for step in range(num_batches):
        order = names[step % len(names):] + names[:step % len(names)]
        for name in order:
            loader = loaders[name]
            index = step % len(loader)
            if step and index == 0:
                loader.on_epoch_end()
            t0 = time.perf_counter()
            loader[index]
            times[name].append(time.perf_counter() - t0)
    plain = np.asarray(times["plain_pydataset"])
    rates = {}
    for name in names:
        t = np.asarray(times[name])
        rates[name] = {"median_ms": 1000 * float(np.median(t)),
                       "batches_per_s": float(len(t) / t.sum()),
                       "time_ratio_to_plain": float(np.median(t) / np.median(plain)),
                       "paired_ratio_median": float(np.median(t / plain)),
                       "batches": len(t)}
    return {"batch_size": batch, "input_shape": list(x.shape[1:]), "clips": len(x),
            "rates": rates}


def backend_device():
    """The device Keras' backend computes on, in words."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}: {getattr(device, 'device_kind', device)}"
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return gpus[0].name if gpus else "cpu"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--nets", default="logmel,envnet")
    parser.add_argument("--envnet-length", type=int, default=66650)
    parser.add_argument("--jit", choices=("on", "off"), default="on")
    parser.add_argument("--device-inputs", action="store_true",
                        help="put the batch and plans on the device before timing")
    parser.add_argument("--out", default="results/step_time.json")
    args = parser.parse_args(argv)
    configs = {
        "logmel": dict(rounds=args.rounds, warmup=args.warmup, length=16000,
                       sample_rate=16000, batch=args.batch),
        "envnet": dict(rounds=args.rounds, warmup=args.warmup,
                       length=args.envnet_length, batch=args.batch),
    }
    payload = {"backend": keras.backend.backend(), "device": backend_device(),
               "keras": keras.__version__, "python": platform.python_version(),
               "command": " ".join(sys.argv), "jit_compile": args.jit == "on",
               "device_inputs": args.device_inputs,
               "step_time": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for net in args.nets.split(","):
        payload["step_time"][net] = step_times(net, configs[net], jit=args.jit == "on",
                                               device_inputs=args.device_inputs)
        out.write_text(json.dumps(payload, indent=2))
    # The loader on the log-mel net's input: noise clips, 10 classes, 5 points.
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((64 * args.batch, 16000))).astype(np.float32)
    loader = pydataset_rates(x, np.arange(len(x)) % 10, args.batch, 10,
                             len(LOGMEL_POINTS), num_batches=200, sample_rate=16000)
    payload["pydataset"] = loader
    out.write_text(json.dumps(payload, indent=2))
    print(f"backend {payload['backend']}, device {payload['device']}, "
          f"jit_compile={payload['jit_compile']}, batch {args.batch}, "
          f"inputs on device: {args.device_inputs}")
    print(f"{'net':7s} {'variant':15s} {'median ms':>10s} {'ratio':>7s} {'paired':>7s}")
    for net, result in payload["step_time"].items():
        for name, v in result["variants"].items():
            print(f"{net:7s} {name:15s} {1000 * v['median_s']:10.2f} "
                  f"{v['ratio_to_plain']:7.3f} {v['paired_ratio_median']:7.3f}")
    print_pydataset_rates(loader, payload["step_time"].get("logmel", {}).get("plain_steps_per_s"))
    return payload


def print_pydataset_rates(result, model_steps_per_s=None):
    """Prints `pydataset_rates`' table, with the ratio to the model's steps/s."""
    print(f"\nPyDataset loaders ({result['clips']} clips of {result['input_shape']}, "
          f"batch {result['batch_size']}, one thread):")
    # The median is the typical batch; batches/s is over all the time spent,
    # so rare slow batches lower it (the epoch ends are not timed).
    print(f"{'loader':20s} {'median ms':>9s} {'batches/s':>10s} {'x plain time':>13s} "
          f"{'x model':>8s}")
    for name, v in result["rates"].items():
        over = v["batches_per_s"] / model_steps_per_s if model_steps_per_s else float("nan")
        print(f"{name:20s} {v['median_ms']:9.3f} {v['batches_per_s']:10.1f} "
              f"{v['time_ratio_to_plain']:13.3f} {over:8.1f}")


if __name__ == "__main__":
    main()
