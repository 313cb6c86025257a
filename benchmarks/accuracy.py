"""Accuracy benchmark: no mixing vs input mixup vs BC learning vs Manifold
Mixup vs SpeechMix, plus SpeechMix restricted to each single mixing point.

Every method trains the same network with the same optimiser, schedule,
epochs, batch size, data and seeds; they differ only in the mixing plan
(`benchmarks/common.py`, `METHODS`, documents each choice and its source).

SpeechMix follows the authors' code as read in
/work/shared/design/reference.md: r ~ U(0, 1) per sample (Beta(1, 1), alpha
= 1), one point per batch drawn uniformly among the input and the conv
blocks' outputs (never after the last conv stage or the classifier-side
layers), partners of a different class. Manifold Mixup: all points, one
ratio per batch ~ Beta(2, 2) (Verma et al.). Input mixup: log-mel input
point only, alpha = 1.0, one ratio per batch. BC learning: waveform point,
gain-aware ratio, other-class partners.

Protocols (test data is never used to pick anything: epochs and learning
rates are fixed in advance from the package defaults and reference.md's
ESC-10 note; `--validate` swaps every test split for a split of the
*training* data, for tuning):
- ESC-10 (folds 1-3 of /work/shared/data/esc10): train on two folds, test
  on the third, 10 evenly spaced crops per test clip (as BC / SpeechMix);
  leading/trailing digital silence cut from every clip first, as the
  authors' data preparation does (results before 2026-11-26 did not).
- FSDD: leave-one-speaker-out over its 6 speakers; "lowdata" keeps only the
  first k takes of each digit per training speaker.
- Synthesised digits (package built-in, 12 speakers): speakers held out.

Accuracy is pooled over the folds of one seed; the table gives mean ± s.e.
over seeds of the error, the relative error reduction vs "none", and the
paired per-seed difference vs "none".

Modes: --tiny (seconds, for the test), --quick (<= 5 min on 2 CPU cores),
--medium (~35-40 min on 2 CPU cores: ESC-10 3-fold + FSDD LOSO low-data,
log-mel CNN, 3 seeds, methods none/input/bc/speechmix), --full (hours:
all datasets, 5 seeds, every method and the ablation, EnvNet-v2 too).
--envnet adds EnvNet-v2 suites to any mode.

    python benchmarks/accuracy.py --quick --out results/accuracy.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

# ---------------------------------------------------------------------------
# Suites: what each mode runs.

ALL = common.METHOD_ORDER
ABL_LOGMEL = tuple(f"speechmix@{p}" for p in common.ABLATION_LOGMEL)
ABL_ENVNET = tuple(f"speechmix@{p}" for p in common.ABLATION_ENVNET)
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def esc10_suite(name, epochs, methods, net="logmel", length=16000, **extra):
    """ESC-10 folds 1-3 at 16 kHz, batch 32, 10-crop test."""
    return dict(name=name, data="esc10", net=net, sample_rate=16000, length=length,
                folds=[1, 2, 3], epochs=epochs, batch_size=32, crops=10,
                methods=methods, **extra)


# Investigation modes on the ESC-10 test folds, one seed (--seeds for more):
# mode -> ([(suite name, epochs, methods[, esc10_suite kwargs]), ...], note).
ONE_SEED_ESC10 = {
    "long": ([("esc10-long", 100, ("none", "input", "bc", "speechmix"))],
             "long: the medium ESC-10 setting trained 4x longer (100 "
             "epochs, fixed in advance), one seed: does mixing catch "
             "up once training is not cut short? An investigation, "
             "not a result (one seed)."),
    "schedule": ([("esc10-200ep", 200, ("none", "bc", "speechmix")),
                  ("esc10-400ep", 400, ("speechmix",))],
                 "schedule: the medium ESC-10 setting (trimmed clips) at "
                 "200 epochs, where plain training first fits its training "
                 "clips (97 % in benchmarks/investigate.py's validation "
                 "runs), and SpeechMix also at 400 (the authors double the "
                 "epochs when mixing); fixed in advance, one seed."),
    "ablation": ([("esc10-ablation", 25, ("none", "manifold", "speechmix") + ABL_LOGMEL)],
                 "ablation: the medium ESC-10 setting (25 epochs, trimmed "
                 "clips), one seed unless --seeds: Manifold Mixup and "
                 "SpeechMix at each single point, the paper's layer "
                 "ablation on real data."),
    "envnet-short": ([("esc10-envnet-short", 15, ("none", "bc", "speechmix"),
                       dict(net="envnet", length=24000))],
                     "envnet-short: the paper's EnvNet-v2 on ESC-10 at 16 kHz, 1.5 s "
                     "inputs, 15 epochs (the authors train 600-1,200 at 44.1 "
                     "kHz), one seed: a CPU-sized check that the network "
                     "trains with each method, not a result."),
}


def suites_for(mode, have_esc, have_fsdd, envnet):
    """Returns (list of suite dicts, seeds, budget_minutes, notes)."""
    notes = []
    s = []
    if mode == "tiny":
        seeds = [0, 1]
        data = "fsdd" if have_fsdd else "synth-tiny"
        s.append(dict(name=f"{data}-tiny", data=data, net="logmel",
                      sample_rate=8000 if data == "fsdd" else 16000,
                      length=4000 if data == "fsdd" else 8000,
                      folds=["jackson"] if data == "fsdd" else None,
                      per_group=2, test_per_group=2,
                      speakers=FSDD_SPEAKERS[:3] if data == "fsdd" else None,
                      epochs=1, batch_size=16, crops=2,
                      methods=ALL + ("speechmix@block1",)))
        if envnet:
            s.append(dict(s[0], name=f"{data}-tiny-envnet", net="envnet",
                          length=17502, methods=("none", "speechmix"), crops=1))
        return s, seeds, None, notes
    if mode == "quick":
        seeds = [0, 1]
        s.append(dict(name="synth-quick", data="synth", net="logmel",
                      sample_rate=16000, length=16000, folds="one-fold",
                      per_group=2, epochs=10, batch_size=32, crops=3,
                      methods=ALL + ABL_LOGMEL))
        notes.append("quick: built-in synthesised digits, one fold (3 of 12 "
                     "speakers held out), 2 takes per digit per training "
                     "speaker (180 clips), 10 epochs, 2 seeds only; a smoke "
                     "run of the whole comparison, not a result.")
        if envnet:
            s.append(dict(name="synth-quick-envnet", data="synth", net="envnet",
                          sample_rate=16000, length=17502, folds="one-fold",
                          per_group=2, epochs=4, batch_size=32, crops=1,
                          methods=("none", "speechmix")))
        return s, seeds, 4.6, notes
    if mode == "medium":
        seeds = [0, 1, 2]
        meds = ("none", "input", "bc", "speechmix")
        if have_esc:
            s.append(esc10_suite("esc10", 25, meds))
        if have_fsdd:
            # 6,000 samples (0.75 s) hold 97 % of FSDD clips whole.
            s.append(dict(name="fsdd-loso-lowdata5", data="fsdd", net="logmel",
                          sample_rate=8000, length=6000, folds=list(FSDD_SPEAKERS),
                          per_group=5, epochs=25, batch_size=32, crops=3,
                          methods=meds))
        if not s:
            s.append(dict(name="synth-4fold", data="synth", net="logmel",
                          sample_rate=16000, length=16000, folds="4-fold",
                          per_group=2, epochs=25, batch_size=32, crops=3,
                          methods=meds))
        notes.append("medium: ESC-10 with 1 s training crops (10-crop test) "
                     "and 25 epochs; FSDD with the first 5 takes per digit per "
                     "training speaker (250 clips), 0.75 s inputs and 25 "
                     "epochs; so that 3 seeds fit in ~35 min on 2 shared CPU "
                     "cores. Not tuned on test data (see README: a first "
                     "FSDD setting, 150 clips x 20 epochs, was abandoned "
                     "because its *training* accuracy stayed at 25-37 %). "
                     "The full FSDD LOSO is in --full.")
        if envnet:
            s.append(esc10_suite("esc10-envnet", 15, ("none", "bc", "speechmix"),
                                 net="envnet", length=24000))
        return s, seeds, None, notes
    if mode in ONE_SEED_ESC10:
        seeds = [0]
        specs, note = ONE_SEED_ESC10[mode]
        if have_esc:
            s.extend(esc10_suite(*spec[:3], **(spec[3] if len(spec) > 3 else {}))
                     for spec in specs)
        notes.append(note)
        return s, seeds, None, notes
    # full
    seeds = [0, 1, 2, 3, 4]
    if have_esc:
        s.append(esc10_suite("esc10", 80, ALL + ABL_LOGMEL, length=24000))
    if have_fsdd:
        s.append(dict(name="fsdd-loso", data="fsdd", net="logmel",
                      sample_rate=8000, length=6000, folds=list(FSDD_SPEAKERS),
                      epochs=20, batch_size=32, crops=3, methods=ALL))
        s.append(dict(name="fsdd-loso-lowdata10", data="fsdd", net="logmel",
                      sample_rate=8000, length=6000, folds=list(FSDD_SPEAKERS),
                      per_group=10, epochs=40, batch_size=32, crops=3,
                      methods=ALL + ABL_LOGMEL))
    s.append(dict(name="synth-4fold", data="synth", net="logmel",
                  sample_rate=16000, length=16000, folds="4-fold",
                  epochs=40, batch_size=32, crops=3, methods=ALL + ABL_LOGMEL))
    if have_esc:  # EnvNet-v2 always runs in --full (reduced epochs on CPU)
        s.append(esc10_suite("esc10-envnet", 60, ALL + ABL_ENVNET, net="envnet",
                             length=24000, seeds=[0, 1, 2]))
    notes.append("full: EnvNet-v2 at 16 kHz / 24,000 samples (1.5 s) with 60 "
                 "epochs instead of the authors' 600-1,200 at 44.1 kHz.")
    return s, seeds, None, notes


# ---------------------------------------------------------------------------
# Data


class Data:
    def __init__(self, root):
        self.root = root
        self.cache = {}

    def get(self, suite):
        key = (suite["data"], suite["sample_rate"])
        if key not in self.cache:
            started = time.perf_counter()
            if suite["data"] == "esc10":
                # The authors' data preparation cuts the digital silence ESC
                # clips are padded with (see common.load_esc10).
                clips = common.load_esc10(self.root, suite["sample_rate"], trim=True)
            elif suite["data"] == "fsdd":
                clips = common.load_fsdd(self.root, suite["sample_rate"])
            elif suite["data"] == "synth-tiny":
                clips = common.load_synth(num_speakers=3, takes_per_speaker=2)
            else:
                clips = common.load_synth()
            print(f"[data] {suite['data']} @ {suite['sample_rate']} Hz: "
                  f"{len(clips)} clips in {time.perf_counter() - started:.1f} s",
                  flush=True)
            self.cache[key] = clips
        return self.cache[key]

    def splits(self, suite, validate=False):
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
            elif folds == "4-fold":
                held = [speakers[i::4] for i in range(4)]
            else:
                held = list(folds)
            splits = common.group_splits(clips, held)
        out = []
        for name, train, test in splits:
            if suite.get("per_group"):
                train = common.per_class_per_group(train, suite["per_group"])
            if suite.get("test_per_group"):  # --tiny only: a small test set
                test = common.per_class_per_group(test, suite["test_per_group"])
            if validate:
                train, test = common.validation_split(train, seed=0)
                name = f"{name}/val"
            out.append((name, train, test))
        return out


# ---------------------------------------------------------------------------
# Summaries


def summarise(runs, suites, seeds):
    """Per suite and method: pooled accuracy per seed, mean ± s.e., deltas."""
    summary = {}
    for suite in suites:
        rows = [r for r in runs if r["suite"] == suite["name"]]
        folds = sorted({r["fold"] for r in rows})
        per = {}
        for method in suite["methods"]:
            seed_err = common.pooled_errors([r for r in rows if r["method"] == method],
                                            suite.get("seeds", seeds), len(folds))
            mean, se = common.mean_se(list(seed_err.values()))
            per[method] = {"error_per_seed": seed_err, "error_mean": mean,
                           "error_se": se, "accuracy_mean": None if mean is None else 1 - mean,
                           "num_seeds": len(seed_err),
                           "train_acc_inference_mean": _mean(
                               [r["train_accuracy_inference"] for r in rows if r["method"] == method]),
                           "seconds_per_run": _mean(
                               [r["train_seconds"] for r in rows if r["method"] == method])}
        base = per.get("none", {})
        for method, info in per.items():
            if method == "none" or base.get("error_mean") is None or info["error_mean"] is None:
                continue
            info["relative_error_reduction"] = (
                (base["error_mean"] - info["error_mean"]) / base["error_mean"]
                if base["error_mean"] > 0 else None)
            shared = sorted(set(base["error_per_seed"]) & set(info["error_per_seed"]))
            diffs = [base["error_per_seed"][k] - info["error_per_seed"][k] for k in shared]
            d_mean, d_se = common.mean_se(diffs)
            info["paired_error_drop_mean"] = d_mean
            info["paired_error_drop_se"] = d_se
        summary[suite["name"]] = {"folds": folds, "methods": per}
    return summary


def _mean(values):
    return float(np.mean(values)) if values else None


def table(summary, suites):
    lines = []
    for suite in suites:
        info = summary[suite["name"]]
        lines.append("")
        lines.append(f"== {suite['name']} ({suite['net']}, {suite['data']}, "
                     f"{len(info['folds'])} fold(s): {', '.join(info['folds'])}; "
                     f"{suite['epochs']} epochs)")
        lines.append(f"{'method':22s} {'error % (mean±se)':>18s} {'seeds':>5s} "
                     f"{'rel. red.':>9s} {'paired drop':>14s} {'train acc':>9s} {'s/run':>6s}")
        for method in suite["methods"]:
            m = info["methods"][method]
            red = m.get("relative_error_reduction")
            drop = m.get("paired_error_drop_mean")
            drop_text = "" if drop is None else (
                f"{100 * drop:+.1f}" + ("" if m.get("paired_error_drop_se") is None
                                        else f" ± {100 * m['paired_error_drop_se']:.1f}"))
            red_text = "" if red is None else f"{100 * red:+.0f} %"
            tacc = m["train_acc_inference_mean"]
            tacc_text = "" if tacc is None else f"{100 * tacc:.0f} %"
            secs = m["seconds_per_run"]
            secs_text = "" if secs is None else f"{secs:.0f}"
            err_text = common.fmt_pct(m["error_mean"], m["error_se"])
            lines.append(
                f"{method:22s} {err_text:>18s} {m['num_seeds']:>5d} {red_text:>9s} "
                f"{drop_text:>14s} {tacc_text:>9s} {secs_text:>6s}")
    return "\n".join(lines)


def plot(summary, suites, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, len(suites), figsize=(4.8 * len(suites), 4), squeeze=False)
    for axis, suite in zip(axes[0], suites):
        methods = suite["methods"]
        info = summary[suite["name"]]["methods"]
        means = [100 * (info[m]["error_mean"] or np.nan) for m in methods]
        ses = [100 * (info[m]["error_se"] or 0.0) for m in methods]
        colors = ["#888" if m == "none" else "#c44" if m == "speechmix"
                  else "#e99" if "@" in m else "#48c" for m in methods]
        axis.bar(range(len(methods)), means, yerr=ses, color=colors, capsize=3)
        axis.set_xticks(range(len(methods)), methods, rotation=60, ha="right", fontsize=8)
        axis.set_ylabel("test error (%)")
        axis.set_title(f"{suite['name']} ({suite['net']})", fontsize=9)
        axis.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


# ---------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    for name in ("tiny", "quick", "medium", "long", "schedule", "ablation",
                 "envnet-short", "full"):
        mode.add_argument(f"--{name}", action="store_const", dest="mode", const=name)
    parser.add_argument("--envnet", action="store_true", help="add EnvNet-v2 suites")
    parser.add_argument("--out", default=None, help="JSON path (default results/accuracy[_mode].json)")
    parser.add_argument("--data-root", default=str(common.DEFAULT_DATA),
                        help="folder with esc10/ and fsdd/ (falls back to the synthesised set)")
    parser.add_argument("--validate", action="store_true",
                        help="test on a validation split of the training data (for tuning)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no new run after this many minutes")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in --out (same mode) and do the rest")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "gpu"))
    parser.add_argument("--only", nargs="+", default=None, metavar="SUITE",
                        help="run only the named suites of the mode (e.g. esc10)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="replace the mode's seeds (with --resume: add seeds to a run)")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    args.mode = args.mode or "quick"
    if args.device == "cpu":
        common.hide_gpus()
    device = common.device_info(args.device)
    out = Path(args.out or ("results/accuracy.json" if args.mode == "quick"
                            else f"results/accuracy_{args.mode}.json"))
    have_esc = common.has_data(args.data_root, "esc10")
    have_fsdd = common.has_data(args.data_root, "fsdd")
    suites, seeds, budget, notes = suites_for(args.mode, have_esc, have_fsdd, args.envnet)
    if args.seeds:
        seeds = sorted(set(args.seeds))
        suites = [{k: v for k, v in suite.items() if k != "seeds"} for suite in suites]
    if args.only:
        unknown = sorted(set(args.only) - {s["name"] for s in suites})
        if unknown:
            parser.error(f"--only: no suite named {unknown} in --{args.mode}; it has "
                         f"{[s['name'] for s in suites]}")
        suites = [s for s in suites if s["name"] in args.only]
        notes.append(f"--only: suites {args.only} of this mode.")
    budget = args.max_minutes if args.max_minutes is not None else budget
    if not (have_esc and have_fsdd) and args.mode != "quick":
        notes.append(f"shared data missing under {args.data_root} (esc10: "
                     f"{have_esc}, fsdd: {have_fsdd}); ran what was available"
                     " / the synthesised set instead.")
    if args.validate:
        notes.append("--validate: every test split replaced by a held-out "
                     "part of its training data; no test data used.")
    config = {"mode": args.mode, "seeds": seeds, "suites": suites,
              "methods": {m: common.method_description(m)
                          for s in suites for m in s["methods"]},
              "optimiser": {"logmel": "Adam, cosine decay from 2e-3 to 5 % over training "
                                      "(keras_speechmix.experiment's recipe)",
                            "envnet": "Nesterov SGD momentum 0.9, weight decay 5e-4, "
                                      "LR 0.01 / 10 at 50 % and 75 % (authors' recipe)"},
              "loss": "categorical cross-entropy on (mixed) one-hot targets",
              "train_crops": "random crop / random placement of each clip to input_length "
                             "(ClipSet.to_dataset(training=True)), reshuffled per epoch",
              "test": "softmax averaged over `crops` evenly spaced windows per clip "
                      "(clips no longer than input_length: one zero-padded window)",
              "jit_compile": False, "validate": args.validate,
              "max_minutes": budget, "data_root": args.data_root, "notes": notes,
              "command": " ".join(sys.argv)}
    print(f"[config] mode={args.mode} device={device['device']} seeds={seeds} "
          f"budget={budget} min", flush=True)
    for note in notes:
        print(f"[note] {note}", flush=True)
    data = Data(args.data_root)
    runs, stopped = [], False
    if args.resume and out.is_file():
        previous = json.loads(out.read_text())
        if previous.get("config", {}).get("suites") != json.loads(json.dumps(suites)):
            raise SystemExit(f"--resume: {out} was written with another configuration")
        runs.extend(previous.get("runs", []))
        config["resumed_from_runs"] = len(runs)
        print(f"[resume] {len(runs)} runs kept from {out}", flush=True)
    done = {(r["suite"], r["fold"], r["seed"], r["method"]) for r in runs}
    started = time.perf_counter()
    payload = {"config": config, "device": device, "runs": runs}
    # Seeds outermost: a run stopped by the budget leaves whole seeds behind.
    all_seeds = sorted({k for s in suites for k in s.get("seeds", seeds)})
    for seed in all_seeds:
        for suite in suites:
            if seed not in suite.get("seeds", seeds):
                continue
            for fold, train, test in data.splits(suite, args.validate):
                for method in suite["methods"]:
                    if (suite["name"], fold, seed, method) in done:
                        continue
                    elapsed = (time.perf_counter() - started) / 60
                    if budget is not None and elapsed > budget:
                        stopped = True
                        break
                    result = common.train_run(
                        train, test, method, net=suite["net"],
                        epochs=suite["epochs"], seed=seed,
                        length=suite["length"], batch_size=suite["batch_size"],
                        crops=suite["crops"], verbose=args.verbose)
                    result.update(suite=suite["name"], fold=fold,
                                  dataset=suite["data"])
                    runs.append(result)
                    print(f"[run {len(runs):3d} {elapsed:5.1f} min] {suite['name']:20s} "
                          f"{fold:14s} seed {seed} {method:18s} "
                          f"acc {100 * result['test_accuracy']:5.1f} % "
                          f"(train-inference {100 * result['train_accuracy_inference']:.0f} %, "
                          f"{result['train_seconds']:.0f} s)", flush=True)
                    common.write_json(out, payload)
                if stopped:
                    break
            if stopped:
                break
        if stopped:
            break
    total = time.perf_counter() - started
    summary = summarise(runs, suites, seeds)
    payload.update(summary=summary, stopped_by_budget=stopped,
                   total_seconds=round(total, 1), num_runs=len(runs))
    png = plot(summary, suites, out.with_suffix(".png"))
    payload["png"] = png
    common.write_json(out, payload)
    print(table(summary, suites))
    print(f"\n{len(runs)} runs in {total / 60:.1f} min"
          + (" (stopped by the time budget: incomplete seeds are left out of the table)"
             if stopped else "") + f"; JSON: {out}" + (f"; plot: {png}" if png else ""))
    return payload


if __name__ == "__main__":
    main()
