"""Why does SpeechMix trail plain training here? Variants on validation splits.

Issue 7 asks, when SpeechMix misses the paper's gain, for an investigation
on a validation split rather than tuning on test data. This script trains
the log-mel CNN on ESC-10 with every test fold removed: for each of the
three leave-one-fold-out splits the *training* folds are cut again into
80 % train / 20 % validation (stratified by class), and only the validation
clips are scored (10 crops each, as the test). Each variant changes one
thing against the `--medium` ESC-10 setting (1 s crops, 25 epochs, Adam
2e-3 with cosine decay, batch 32):

- `trim`: leading/trailing digital silence cut from every clip first, as
  the BC-learning / SpeechMix data preparation does (ESC clips are padded
  to 5 s, so random 1 s crops of short sounds are often silent).
- `x2`, `x8`: 2 or 8 times the epochs (the authors train 600 epochs, and
  double them for mixed training).
- `lr6e-3`: three times the learning rate.
- `alpha0.4`: ratios from Beta(0.4, 0.4) instead of U(0, 1), so most mixes
  stay close to one clip (Zhang et al.'s speech-command experiments used
  alpha 0.1-0.2).
- `sound`: hidden points mix with the variance-preserving rule
  (h1 r + h2 (1 - r)) / sqrt(r^2 + (1 - r)^2).
- `noinput`: SpeechMix at the conv blocks only (the authors' canonical run
  never mixes the input either).
- `wide`: filters (64, 128, 256) instead of (32, 64, 128).

    python benchmarks/investigate.py --out results/investigate_esc10.json
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

BASE = dict(epochs=25, length=16000, batch_size=32, crops=10)
BLOCKS = ("block1", "block2", "block3")
VARIANTS = {
    "none": dict(method="none"),
    "speechmix": dict(method="speechmix"),
    "none+trim": dict(method="none", trim=True),
    "speechmix+trim": dict(method="speechmix", trim=True),
    "bc+trim": dict(method="bc", trim=True),
    "input+trim": dict(method="input", trim=True),
    "none+trim+x2": dict(method="none", trim=True, epochs=50),
    "speechmix+trim+x2": dict(method="speechmix", trim=True, epochs=50),
    "none+trim+x8": dict(method="none", trim=True, epochs=200),
    "speechmix+trim+x8": dict(method="speechmix", trim=True, epochs=200),
    "bc+trim+x8": dict(method="bc", trim=True, epochs=200),
    "none+trim+lr6e-3": dict(method="none", trim=True, learning_rate=6e-3),
    "speechmix+trim+lr6e-3": dict(method="speechmix", trim=True, learning_rate=6e-3),
    "speechmix+trim+alpha0.4": dict(method="speechmix", trim=True, alpha=0.4),
    "speechmix+trim+sound": dict(method="speechmix", trim=True, hidden_rule="sound"),
    "speechmix+trim+noinput": dict(method="speechmix", trim=True, mix_points=BLOCKS),
    "none+trim+wide": dict(method="none", trim=True, filters=(64, 128, 256)),
    "speechmix+trim+wide": dict(method="speechmix", trim=True, filters=(64, 128, 256)),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS),
                        choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--folds", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--data-root", default=str(common.DEFAULT_DATA))
    parser.add_argument("--out", default=str(common.REPO / "results" / "investigate_esc10.json"))
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--tiny", action="store_true",
                        help="1 epoch, fold 1, seed 0, two variants (for the test)")
    args = parser.parse_args(argv)
    base = dict(BASE)
    if args.tiny:
        base["epochs"] = 1
        args.variants, args.seeds, args.folds = ["none", "speechmix+trim+sound"], [0], [1]
    if not common.has_data(args.data_root, "esc10"):
        raise SystemExit(f"ESC-10 not found under {args.data_root} (esc10/meta.csv)")
    common.hide_gpus()
    device = common.device_info("cpu")
    started = time.perf_counter()
    raw = common.load_esc10(args.data_root, 16000)
    sets = {False: raw, True: raw.trim_silence()}  # = load_esc10(trim=True)
    splits = {}
    for trim, clips in sets.items():
        for name, train, _test in common.fold_splits(clips, args.folds):
            splits[trim, name] = common.validation_split(train, seed=0)
    runs, stopped = [], False
    for seed in args.seeds:
        for variant in args.variants:
            spec = dict(VARIANTS[variant])
            trim = spec.pop("trim", False)
            method = spec.pop("method")
            options = dict(base, **spec)
            for fold in args.folds:
                minutes = (time.perf_counter() - started) / 60
                if args.max_minutes and minutes > args.max_minutes:
                    stopped = True
                    break
                train, val = splits[trim, f"fold{fold}"]
                result = common.train_run(train, val, method, seed=seed, **options)
                result.update(variant=variant, fold=f"fold{fold}/val", trim=trim)
                runs.append(result)
                print(f"[{minutes:5.1f} min] seed {seed} {variant:24s} fold{fold}/val "
                      f"acc {100 * result['test_accuracy']:5.1f} % "
                      f"(train-inference {100 * result['train_accuracy_inference']:.0f} %, "
                      f"{result['train_seconds']:.0f} s)", flush=True)
                common.write_json(args.out, dict(device=device, base=base,
                                                 variants=VARIANTS, runs=runs,
                                                 stopped_by_budget=stopped))
    rows = summarise(runs, len(args.folds))
    common.write_json(args.out, dict(device=device, base=base, variants=VARIANTS,
                                     runs=runs, summary=rows, stopped_by_budget=stopped,
                                     total_seconds=round(time.perf_counter() - started, 1)))
    print(f"\nESC-10 validation error (folds pooled per seed; mean ± s.e. over seeds)")
    print(f"{'variant':26s} {'error %':>12s} {'seeds':>5s} {'train acc':>9s} {'s/run':>6s}")
    for row in rows:
        print(f"{row['variant']:26s} {common.fmt_pct(row['error'], row['error_se']):>12s} "
              f"{row['seeds']:5d} {100 * row['train_accuracy']:8.0f}% {row['seconds']:6.0f}")
    print(f"\n{len(runs)} runs in {(time.perf_counter() - started) / 60:.1f} min on "
          f"{device['device']}; JSON: {args.out}")


def summarise(runs, num_folds):
    rows = []
    for variant in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == variant]
        errors = list(common.pooled_errors(
            mine, sorted({r["seed"] for r in mine}), num_folds).values())
        mean, se = common.mean_se(errors)
        rows.append(dict(variant=variant, error=mean, error_se=se, seeds=len(errors),
                         train_accuracy=float(np.mean([r["train_accuracy_inference"] for r in mine])),
                         seconds=float(np.mean([r["train_seconds"] for r in mine]))))
    return rows


if __name__ == "__main__":
    main()
