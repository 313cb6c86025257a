"""Accuracy benchmark: does SpeechMix generalise better than plain training?

Every method trains the package's default recipe (`keras_speechmix.
experiment.RECIPE`, what `speechmix train` runs with no flags: its silence
trimming and validation hold-out included): the same network,
optimiser, schedule, batch size, crops and seeds; mixing methods get the
recipe's mixing epochs (the authors double them), and differ only in the
mixing plan (`experiment.METHODS`). Test clips are scored once, after the
last epoch, on 10 evenly spaced crops; nothing is chosen on a test split
(the recipe was chosen on validation splits, see benchmarks/NOTES.md).

Modes, each named for the claim it checks:

- `--esc10`: SpeechMix beats plain training on ESC-10 (3-fold CV over
  folds 1-3 of ../shared/data/esc10), to at most 0.8 x its error with
  McNemar's paired test resolving the difference, and is no worse than BC
  learning. 5 seeds (`--methods none bc speechmix` for the claim; input
  mixup and Manifold Mixup as context); hours on 2 CPU cores, so run it in
  the background: it writes the JSON after every run and `--resume`
  continues.
- `--fsdd`: the same on spoken digits from unseen speakers: the Free
  Spoken Digit Dataset, leave-one-speaker-out over its 6 speakers, 5 takes
  per digit per training speaker.
- `--quick` (<= 5 min): the whole comparison on the built-in synthesised
  digits, one fold, short; a smoke run, not a result.
- `--tiny` (seconds): for the tests.

    python benchmarks/accuracy.py --esc10 --resume    # -> results/accuracy_esc10.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

from keras_speechmix.cli import plots  # noqa: E402
from keras_speechmix.training import experiment  # noqa: E402
from keras_speechmix.training.paired import compare_shifts, shift_lines  # noqa: E402

ALL = ("none", "input", "bc", "manifold", "speechmix")
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
# The claim checked: SpeechMix's error at most this share of plain training's,
# with the paired test resolving the difference, and no worse than BC.
TARGET_RATIO = 0.8


def suites_for(mode, root):
    """Returns (suites, seeds, budget in minutes, notes) of a mode."""
    have_esc = common.has_data(root, "esc10")
    have_fsdd = common.has_data(root, "fsdd")
    if mode == "tiny":
        data = "fsdd" if have_fsdd else "synth-tiny"
        return [dict(name=f"{data}-tiny", data=data,
                     sample_rate=8000 if data == "fsdd" else None,
                     folds=["jackson"] if data == "fsdd" else None,
                     speakers=FSDD_SPEAKERS[:3] if data == "fsdd" else None,
                     per_group=2, test_per_group=2, epochs=1, mix_epochs=1,
                     crops=2, methods=ALL)], [0, 1], None, []
    if mode == "quick":
        return [dict(name="synth-quick", data="synth", folds="one-fold", per_group=2,
                     epochs=10, mix_epochs=20, crops=3, methods=ALL)], [0, 1], 4.6, [
            "quick: built-in synthesised digits, 3 of 12 speakers held out, 2 takes "
            "per digit per training speaker, 10 / 20 epochs: a smoke run, not a result."]
    if mode == "esc10":
        if not have_esc:
            raise SystemExit(f"--esc10 needs {root}/esc10/meta.csv")
        return [dict(name="esc10", data="esc10", folds=[1, 2, 3], methods=ALL)], \
            [0, 1, 2, 3, 4], None, []
    if mode == "fsdd":
        if not have_fsdd:
            raise SystemExit(f"--fsdd needs {root}/fsdd/recordings")
        # FSDD is recorded at 8 kHz: the network runs at that rate.
        return [dict(name="fsdd-loso", data="fsdd", sample_rate=8000,
                     folds=list(FSDD_SPEAKERS), per_group=5, methods=ALL)], [0, 1, 2], None, []
    raise ValueError(mode)


class Data:
    """Loads each data set once and cuts a suite's splits."""

    def __init__(self, root):
        self.root = root
        self.cache = {}

    def get(self, suite):
        rate = suite.get("sample_rate") or experiment.NETWORKS[
            experiment.RECIPE["model"]]["sample_rate"]
        trim = experiment.RECIPE["trim_silence"]  # as `speechmix train` loads
        key = (suite["data"], trim, rate)
        if key not in self.cache:
            started = time.perf_counter()
            if suite["data"] == "esc10":
                clips = common.load_esc10(self.root, rate)
            elif suite["data"] == "fsdd":
                clips = common.load_fsdd(self.root, rate)
            elif suite["data"] == "synth-tiny":
                clips = common.load_synth(num_speakers=3, takes_per_speaker=2)
            else:
                clips = common.load_synth()
            if trim:
                clips = clips.trim_silence()
            print(f"[data] {suite['data']}: {len(clips)} clips at {rate} Hz in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            self.cache[key] = clips
        return self.cache[key]

    def splits(self, suite):
        clips = self.get(suite)
        folds = suite.get("folds")
        if suite["data"] == "esc10":
            splits = common.fold_splits(clips, folds)
        else:
            if suite.get("speakers"):
                clips = clips.subset(np.isin(clips.groups, suite["speakers"]))
            speakers = sorted(set(clips.groups))
            if folds is None:
                held = [speakers[-1]]
            elif folds == "one-fold":
                held = [speakers[:3]]
            else:
                held = list(folds)
            splits = common.group_splits(clips, held)
        out = []
        for name, train, test in splits:
            if suite.get("per_group"):
                train = common.per_class_per_group(train, suite["per_group"])
            if suite.get("test_per_group"):  # --tiny only: a small test set
                test = common.per_class_per_group(test, suite["test_per_group"])
            out.append((name, train, test))
        return out


def same_recipe(stored, recipe):
    """Whether runs stored with recipe `stored` are runs of `recipe`. An
    option added to the recipe since, and off today (None), left them as
    they were."""
    recipe = json.loads(json.dumps(recipe))
    return dict({k: v for k, v in recipe.items() if v is None}, **stored) == recipe


def changed_methods(previous, current):
    """The methods whose runs in `previous` (a stored config) `--resume`
    must not keep: their mixing arguments, points or hidden gains differ
    from `current`'s. Plain training has no mixing: its points are
    identities (no weights, no random draws), so a change of SpeechMix's
    points leaves its runs as they were. A config from before hidden gains
    were stored is read as having today's."""
    def signature(config, method):
        points = config["network_points"].get(method) if method != "none" else None
        gains = config.get("hidden_gains", current["hidden_gains"]).get(method)
        return json.dumps([config["methods"].get(method), points, gains])
    return {m for m in current["methods"]
            if m in previous["methods"] and signature(previous, m) != signature(current, m)}


def one_run(train, test, method, seed, suite):
    """One method on one split, on the path `speechmix train` takes with no
    flags: the recipe's validation hold-out, then `train_clips` with the
    recipe's defaults (only the smoke modes shorten the epochs)."""
    mixing = method != "none"
    epochs = suite.get("mix_epochs" if mixing else "epochs")
    train, validation = experiment.hold_out_validation(train, seed=seed)
    _, result = experiment.train_clips(train, test, mix=method, seed=seed,
                                       validation=validation, epochs=epochs,
                                       crops=suite.get("crops", 10), verbose=0)
    result.pop("history", None)
    result.pop("confusion", None)
    predicted = np.asarray(result.pop("test_predicted"))
    # Per-clip correctness in the test split's order: the paired tests need it.
    result["correct"] = (predicted == np.asarray(test.labels)).astype(int).tolist()
    result["test_correct"] = int(sum(result["correct"]))
    return result


def summarise(runs, suites, seeds):
    """Per suite and method: error per seed (folds pooled), mean ± s.e., deltas."""
    summary = {}
    for suite in suites:
        rows = [r for r in runs if r["suite"] == suite["name"]]
        folds = sorted({r["fold"] for r in rows})
        per = {}
        for method in suite["methods"]:
            mine = [r for r in rows if r["method"] == method]
            seed_err = common.pooled_errors(mine, seeds, len(folds))
            mean, se = common.mean_se(list(seed_err.values()))
            per[method] = {"error_per_seed": seed_err, "error_mean": mean, "error_se": se,
                           "num_seeds": len(seed_err),
                           "ece_mean": _mean([r["test_ece"] for r in mine if "test_ece" in r]),
                           "ece_pooled": common.pooled_ece(mine),
                           "ece_uncalibrated_mean": _mean(
                               [r.get("test_ece_uncalibrated", r["test_ece"])
                                for r in mine if "test_ece" in r]),
                           "train_accuracy_mean": _mean([r["train_accuracy"] for r in mine]),
                           "epochs": sorted({r["epochs"] for r in mine}),
                           "seconds_per_run": _mean([r["seconds"] for r in mine])}
        base = per.get("none", {})
        for method, info in per.items():
            if method == "none" or base.get("error_mean") is None or info["error_mean"] is None:
                continue
            info["relative_error_reduction"] = (
                (base["error_mean"] - info["error_mean"]) / base["error_mean"]
                if base["error_mean"] > 0 else None)
            info.update(paired_against_none(rows, method, seeds, len(folds)))
        # Whole seeds only (every method on every fold), as the clean table.
        whole = [s for s in seeds if all(
            sum(r["seed"] == s and r["method"] == m for r in rows) >= len(folds)
            for m in suite["methods"])]
        shifts = compare_shifts([r for r in rows if r["seed"] in whole], suite["methods"])
        summary[suite["name"]] = {"folds": folds, "methods": per, "shifts": shifts,
                                  "target": _target(per), "robustness_target":
                                  _robustness_target(per, shifts)}
    return summary


def paired_against_none(rows, method, seeds, num_folds):
    """`method` against plain training on the same clips, seeds and folds.

    Per seed, the difference of the pooled errors (method - none); over
    every (seed, fold, clip) that both scored, McNemar's exact test on the
    clips only one of the two gets right. Runs from before per-clip
    predictions were kept (no `correct`) give the per-seed differences only.
    """
    mine = {(r["seed"], r["fold"]): r for r in rows if r["method"] == method}
    none = {(r["seed"], r["fold"]): r for r in rows if r["method"] == "none"}
    diffs = {}
    for seed in seeds:
        keys = [k for k in mine if k[0] == seed and k in none]
        if len(keys) >= num_folds:
            err = {m: 1.0 - sum(src[k]["test_correct"] for k in keys)
                   / sum(src[k]["num_test"] for k in keys)
                   for m, src in (("method", mine), ("none", none))}
            diffs[seed] = err["method"] - err["none"]
    paired = [k for k in mine if k in none and "correct" in mine[k] and "correct" in none[k]
              and k[0] in diffs]
    out = {"paired_difference_per_seed": diffs}
    if paired:
        test = common.mcnemar(np.concatenate([mine[k]["correct"] for k in paired]),
                              np.concatenate([none[k]["correct"] for k in paired]))
        out["mcnemar"] = dict(test, clips=int(sum(len(mine[k]["correct"]) for k in paired)))
    return out


def _resolved(info):
    test = info.get("mcnemar")
    return test is not None and test["p"] < 0.05


def _mean(values):
    return float(np.mean(values)) if values else None


def _target(per):
    """The issue's claim, checked: each condition True / False / None (n/a)."""
    sm, none = per.get("speechmix"), per.get("none")
    if not sm or not none or sm["error_mean"] is None or none["error_mean"] is None:
        return None
    checks = {
        f"speechmix <= {TARGET_RATIO} x none": sm["error_mean"] <= TARGET_RATIO * none["error_mean"],
        "resolved by McNemar (p < 0.05)": _resolved(sm),
    }
    if per.get("bc", {}).get("error_mean") is not None:
        checks["speechmix no worse than bc"] = sm["error_mean"] <= per["bc"]["error_mean"]
    return checks


def _robustness_target(per, shifts):
    """Issue 27's claims, checked: every level shift moves every method's
    error by at most 1 point; SpeechMix at most 0.8 x plain training's
    error in white noise at 20 and 10 dB SNR, resolved; clean ECE <= 5 %."""
    if "clean" not in shifts:
        return None
    checks = {}
    for method, clean in shifts["clean"].items():
        moved = [abs(rows[method]["error_mean"] - clean["error_mean"])
                 for shift, rows in shifts.items() if shift.startswith("level:")
                 and method in rows]
        if moved:
            checks[f"{method}: level shifts move the error <= 1 point"] = max(moved) <= 0.01
    for shift in ("white:20", "white:10"):
        row = shifts.get(shift, {}).get("speechmix", {})
        if "mcnemar" in row:
            checks[f"{shift}: speechmix <= {TARGET_RATIO} x none, resolved"] = bool(
                row["ratio"] is not None and row["ratio"] <= TARGET_RATIO
                and row["mcnemar"]["p"] < 0.05 and row["error_mean"] < shifts[shift]["none"][
                    "error_mean"])
    for method, info in per.items():
        # Pooled over the runs' clips where they kept confidences: the mean
        # of per-fold ECEs carries each fold's sampling floor (8 % on 80 clips).
        pooled = info.get("ece_pooled")
        if pooled is not None:
            checks[f"{method}: clean ECE <= 5 % (pooled, {pooled['clips']} clips)"] = (
                pooled["ece"] <= 0.05)
        elif info.get("ece_mean") is not None:
            checks[f"{method}: clean ECE <= 5 %"] = info["ece_mean"] <= 0.05
    return checks


def table(summary, suites):
    lines = []
    for suite in suites:
        info = summary[suite["name"]]
        lines.append("")
        lines.append(f"== {suite['name']} ({len(info['folds'])} folds: "
                     f"{', '.join(info['folds'])}); recipe: {experiment.RECIPE}")
        lines.append(f"{'method':10s} {'epochs':>6s} {'error % (mean ± se)':>20s} "
                     f"{'per seed':>26s} {'rel. red.':>9s} {'paired diff per seed':>26s} "
                     f"{'train acc':>9s} {'s/run':>6s}  paired test vs none")
        for method in suite["methods"]:
            m = info["methods"][method]
            red = m.get("relative_error_reduction")
            seeds = " ".join(f"{100 * e:.1f}" for _, e in sorted(m["error_per_seed"].items()))
            diffs = " ".join(f"{100 * d:+.1f}" for _, d in
                             sorted(m.get("paired_difference_per_seed", {}).items()))
            tacc = m["train_accuracy_mean"]
            secs = m["seconds_per_run"]
            test = m.get("mcnemar")
            words = "" if test is None else (
                f"{test['a_only']} clips only it gets right, {test['b_only']} only none; "
                + common.verdict(m["error_mean"], info["methods"]["none"]["error_mean"],
                                 test["p"]))
            lines.append(
                f"{method:10s} {'/'.join(map(str, m['epochs'])):>6s} "
                f"{common.fmt_pct(m['error_mean'], m['error_se']):>20s} {seeds:>26s} "
                f"{'' if red is None else f'{100 * red:+.0f} %':>9s} {diffs:>26s} "
                f"{'' if tacc is None else f'{100 * tacc:.0f} %':>9s} "
                f"{'' if secs is None else f'{secs:.0f}':>6s}  {words}")
        if info["target"]:
            lines.append("target: " + "; ".join(
                f"{name}: {'yes' if ok else 'NO'}" for name, ok in info["target"].items()))
        if info.get("shifts"):
            lines.append("")
            lines.append("Under recording shifts (the same seeded shifted clips for every "
                         "method; error % per seed pooled over folds, mean ± s.e.; McNemar "
                         "pooled over seeds and folds):")
            lines += shift_lines(info["shifts"], suite["methods"])
            lines.append("Calibration (clean test clips, ECE after / before the temperature "
                         "fitted on the validation hold-out): " + "; ".join(
                             f"{m} {100 * info['methods'][m]['ece_mean']:.1f} / "
                             f"{100 * info['methods'][m]['ece_uncalibrated_mean']:.1f} %"
                             for m in suite["methods"]
                             if info["methods"][m].get("ece_mean") is not None))
            pooled = {m: info["methods"][m].get("ece_pooled") for m in suite["methods"]}
            if any(pooled.values()):
                lines.append("Calibration pooled over the runs that kept confidences (ECE "
                             "after the temperature; in brackets what sampling alone gives a "
                             "calibrated model on as many clips): " + "; ".join(
                                 f"{m} {100 * p['ece']:.1f} % ({100 * p['calibrated_floor']:.1f}"
                                 f" %, {p['clips']} clips)" for m, p in pooled.items() if p))
        if info.get("robustness_target"):
            lines.append("robustness target: " + "; ".join(
                f"{name}: {'yes' if ok else 'NO'}"
                for name, ok in info["robustness_target"].items()))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    for name in ("tiny", "quick", "esc10", "fsdd"):
        mode.add_argument(f"--{name}", action="store_const", dest="mode", const=name)
    parser.add_argument("--out", default=None,
                        help="JSON path (default results/accuracy_<mode>.json)")
    parser.add_argument("--data-root", default=str(common.DEFAULT_DATA),
                        help="folder with esc10/ and fsdd/")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in --out and do the rest")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="replace the mode's seeds (with --resume: add seeds)")
    parser.add_argument("--methods", nargs="+", default=None, choices=ALL,
                        help="run only these methods")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no new run after this many minutes")
    args = parser.parse_args(argv)
    args.mode = args.mode or "quick"
    common.hide_gpus()
    device = common.device_info("cpu")
    out = Path(args.out or f"results/accuracy_{args.mode}.json")
    suites, seeds, budget, notes = suites_for(args.mode, args.data_root)
    seeds = sorted(set(args.seeds)) if args.seeds else seeds
    if args.methods:
        suites = [dict(s, methods=tuple(m for m in s["methods"] if m in args.methods))
                  for s in suites]
    budget = args.max_minutes if args.max_minutes is not None else budget
    config = {"mode": args.mode, "seeds": seeds, "suites": suites,
              "recipe": experiment.RECIPE,
              "methods": {m: experiment.METHODS[m] for m in ALL},
              "network_points": {m: list(map(str, p)) for m, p in
                                 experiment.NETWORKS[experiment.RECIPE["model"]]["points"].items()},
              "hidden_gains": dict(experiment.HIDDEN_GAINS),
              "test": "softmax averaged over 10 evenly spaced crops per clip, last epoch",
              "notes": notes, "command": " ".join(sys.argv)}
    runs = []
    if args.resume and out.is_file():
        previous = json.loads(out.read_text())
        if not same_recipe(previous["config"].get("recipe", {}), experiment.RECIPE):
            raise SystemExit(f"--resume: {out} was written with another recipe")
        changed = changed_methods(previous["config"], config)
        runs = [r for r in previous["runs"] if r["method"] not in changed]
        for method in sorted(changed):
            dropped = sum(r["method"] == method for r in previous["runs"])
            print(f"[resume] {dropped} runs of {method!r} dropped: its mixing "
                  f"arguments, points or hidden gains changed since {out} was written",
                  flush=True)
        print(f"[resume] {len(runs)} runs kept from {out}", flush=True)
    print(f"[config] mode={args.mode} device={device['device']} seeds={seeds} "
          f"recipe={experiment.RECIPE}", flush=True)
    done = {(r["suite"], r["fold"], r["seed"], r["method"]) for r in runs}
    data = Data(args.data_root)
    payload = {"config": config, "device": device, "runs": runs}
    started, stopped = time.perf_counter(), False
    # Seeds outermost: a run stopped early leaves whole seeds behind.
    for seed in seeds:
        for suite in suites:
            for fold, train, test in data.splits(suite):
                for method in suite["methods"]:
                    if (suite["name"], fold, seed, method) in done:
                        continue
                    elapsed = (time.perf_counter() - started) / 60
                    if budget is not None and elapsed > budget:
                        stopped = True
                        break
                    result = one_run(train, test, method, seed, suite)
                    result.update(suite=suite["name"], fold=fold, method=method,
                                  dataset=suite["data"])
                    runs.append(result)
                    print(f"[run {len(runs):3d} {elapsed:6.1f} min] {suite['name']:10s} "
                          f"{fold:10s} seed {seed} {method:10s} error "
                          f"{100 * result['test_error']:5.1f} % (training clips "
                          f"{100 * result['train_accuracy']:.0f} %, {result['seconds']:.0f} s)",
                          flush=True)
                    common.write_json(out, payload)
                if stopped:
                    break
            if stopped:
                break
        if stopped:
            break
    summary = summarise(runs, suites, seeds)
    payload.update(summary=summary, stopped_by_budget=stopped, num_runs=len(runs),
                   total_seconds=round(time.perf_counter() - started, 1))
    common.write_json(out, payload)
    for suite in suites:
        if summary[suite["name"]].get("shifts"):
            picture = out.with_name(f"robustness_{suite['name']}.png")
            plots.plot_robustness(summary[suite["name"]]["shifts"], picture,
                                  title=f"{suite['name']}: test clips under recording shifts")
            print(f"[picture] {picture}")
    print(table(summary, suites))
    print(f"\n{len(runs)} runs; JSON: {out}"
          + (" (stopped by --max-minutes: partial seeds are left out)" if stopped else ""))
    return payload


if __name__ == "__main__":
    main()
