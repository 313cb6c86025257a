"""The `speechmix` command: `demo`, `train` and `evaluate`.

Example:

    speechmix demo --out speechmix-out
    speechmix train --data fsdd:../shared/data/fsdd --mix speechmix --out run1
    speechmix evaluate run1/model.keras --data fsdd:../shared/data/fsdd
"""

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

__all__ = ["main"]


def _folds(text):
    try:
        folds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        folds = []
    if not folds:
        raise argparse.ArgumentTypeError(
            f"folds must be comma-separated integers such as 1,2,3; received {text!r}")
    return folds


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1); received {text!r}")
    return value


def _whole(minimum):
    """An argparse type: an integer >= `minimum` (argparse names the option)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be a whole number >= {minimum}; received {text!r}")
        return value

    return parse


def _positive(text):
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0; received {text!r}")
    return value


_DATA_HELP = ("a folder with one subfolder of audio files per class, a CSV with "
              "columns path,label[,fold] (paths relative to the CSV; ESC's meta.csv "
              "works as it is) or fsdd:DIR (the Free Spoken Digit Dataset)")


def _parser():
    from keras_speechmix import __version__
    from keras_speechmix.experiment import METHODS, MIXES, NETWORKS, RECIPE

    parser = argparse.ArgumentParser(
        prog="speechmix",
        description="Train and compare sound classifiers with SpeechMix (mixing of "
                    "hidden activations). Run `speechmix COMMAND --help` for the "
                    "options of each command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="train with and without SpeechMix on the built-in real "
        "spoken digits, several seeds, and compare on a speaker never trained on",
        description="Train with and without SpeechMix on the built-in spoken digits "
                    "(FSDD recordings shipped with the package: 4 speakers train, 1 "
                    "validates, 1 never heard in training is the test) or on --data, "
                    "several seeds each, and compare the test errors with their "
                    "spread.")
    demo.add_argument("--out", default="speechmix-out",
                      help="output folder for results.json and the pictures "
                           "(default: %(default)s)")
    demo.add_argument("--epochs", type=_whole(1), default=None,
                      help="default: for the built-in digits "
                           f"{DEMO['epoch_share']:g} x the recipe's, "
                           f"{_demo_epochs('none', None)} (plain) / "
                           f"{_demo_epochs('speechmix', None)} (mixing); for --data "
                           f"the recipe's, {RECIPE['epochs']} / {RECIPE['mix_epochs']}")
    demo.add_argument("--seeds", type=_whole(1), default=DEMO["seeds"],
                      help="training seeds per method (the spread is over them; "
                           "default %(default)s)")
    demo.add_argument("--mixes", default=",".join(DEMO["mixes"]),
                      help=f"comma-separated methods from {', '.join(MIXES)} "
                           "(default: %(default)s)")
    demo.add_argument("--takes", type=_whole(1), default=None,
                      help="clips of each class per training speaker (default: all)")
    demo.add_argument("--data", default=None, metavar="SPEC",
                      help="use this dataset instead of the built-in digits: "
                           + _DATA_HELP)
    demo.add_argument("--progress", action="store_true",
                      help="print the loss every 10 epochs of each run")
    demo.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)

    train = commands.add_parser(
        "train", help="train one model and save it",
        description="Train one reference network with one mixing method, score the "
                    "test split once, and save the model (OUT/model.keras: raw "
                    "waveforms in, class probabilities out), metrics.json and "
                    "pictures.")
    train.add_argument("--data", required=True, metavar="SPEC", help=_DATA_HELP)
    train.add_argument("--out", required=True, metavar="FOLDER",
                       help="output folder (a folder that already holds a model is "
                            "refused unless --overwrite)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the model and results already in --out")
    train.add_argument("--mix", default="speechmix", choices=MIXES,
                       help="mixing method: none (plain training), input (input "
                            "mixup), bc (BC learning), manifold (Manifold Mixup) or "
                            "speechmix (default: %(default)s)")
    train.add_argument("--model", default=RECIPE["model"], choices=tuple(NETWORKS),
                       help="reference network (default: %(default)s)")
    train.add_argument("--epochs", type=_whole(1), default=None,
                       help=f"default: {RECIPE['epochs']} without mixing, "
                            f"{RECIPE['mix_epochs']} with (the authors double them)")
    train.add_argument("--learning-rate", type=_positive, default=None, metavar="LR",
                       help="initial learning rate (default: the network's: "
                            + ", ".join(f"{name} {network['learning_rate']:g}"
                                        for name, network in NETWORKS.items())
                            + "; decayed over training)")
    default_alphas = sorted({(m, (k or {}).get("alpha", 1.0)) for m, k in METHODS.items()
                             if k is not None}, key=lambda pair: MIXES.index(pair[0]))
    train.add_argument("--alpha", type=_positive, default=None,
                       help="mixing ratios r ~ Beta(ALPHA, ALPHA); 1 is uniform on "
                            "[0, 1], larger values mix more evenly (default: the "
                            "method's: " + ", ".join(f"{m} {a:g}" for m, a in default_alphas)
                            + ")")
    train.add_argument("--seed", type=_whole(0), default=0,
                       help="seed of the weights, crops, shuffles, splits and mixing "
                            "plans; the same seed repeats a run (default %(default)s)")
    train.add_argument("--train-folds", type=_folds, default=None, metavar="LIST",
                       help="comma-separated folds to train on, e.g. 1,2 (needs "
                            "--test-folds; default: every fold not tested)")
    train.add_argument("--test-folds", type=_folds, default=None, metavar="LIST",
                       help="comma-separated folds to test on, e.g. 3, for data with a "
                            "fold column. Without folds: FSDD's official split (takes "
                            "0-4 test) for fsdd:DIR, else a stratified 80/20 split "
                            "drawn with --seed")
    train.add_argument("--validation", type=_fraction, default=RECIPE["validation"],
                       help="share of the training clips held out for the validation "
                            "curves (0: none; default %(default)s)")
    train.add_argument("--sample-rate", type=_whole(1), default=None, metavar="HZ",
                       help="resample every file to this rate (default: the network's, "
                            + ", ".join(f"{name} {network['sample_rate']}"
                                        for name, network in NETWORKS.items()) + ")")
    train.add_argument("--clip-seconds", type=_positive, default=None, metavar="SECONDS",
                       help="input length of the network: training crops and test "
                            "windows (default: the network's crop, at most the longest "
                            "clip)")
    train.add_argument("--batch-size", type=_whole(1), default=None,
                       help=f"clips per training batch (default {RECIPE['batch_size']}, "
                            "or the number of training clips if fewer)")
    train.add_argument("--mix-off", type=_fraction, default=None,
                       help="share of the last epochs trained without mixing (default "
                            f"{RECIPE['mix_off']:g})")
    train.add_argument("--trim-silence", action=argparse.BooleanOptionalAction,
                       default=RECIPE["trim_silence"],
                       help="cut leading/trailing digital silence from every clip "
                            "(as BC learning / SpeechMix prepare ESC-10/50), so that "
                            "random crops rarely fall on padding (default: "
                            f"{'on' if RECIPE['trim_silence'] else 'off'})")
    train.add_argument("--stream", action="store_true",
                       help="read the files from disk as training goes instead of "
                            "decoding them all into memory first (for large sets)")
    train.add_argument("--memory-budget", type=_positive, default=_default_budget_gb(),
                       metavar="GB",
                       help="stream automatically when the decoded clips would take "
                            "more than this many GB (default: half the RAM, "
                            "%(default).1f)")
    train.add_argument("--cache", default=None, metavar="DIR",
                       help="stream, having decoded and resampled every file once into "
                            "DIR (NumPy arrays at the network's rate): "
                            "compressed or resampled files otherwise cost their decode "
                            "every epoch")
    train.add_argument("--max-skipped", type=_fraction, default=0.05,
                       help="when streaming, stop once more than this share of file "
                            "reads failed (default %(default)s)")
    train.add_argument("--backup", default=None, metavar="DIR",
                       help="back the training state up to DIR after every epoch; "
                            "run the same command again after a crash to go on from "
                            "the last finished epoch (same clips and plans as an "
                            "uninterrupted run)")
    train.add_argument("--save-every", type=_whole(1), default=None, metavar="STEPS",
                       help="with --backup, also back up every STEPS steps and resume "
                            "mid-epoch (no validation curve then)")
    train.add_argument("--collective-timeout", type=_positive, default=120.0,
                       help=argparse.SUPPRESS)  # seconds; tests make it short
    train.add_argument("--quiet", action="store_true",
                       help="no progress lines during training")

    evaluate = commands.add_parser(
        "evaluate", help="accuracy and confusion of a saved model on a data set",
        description="Score a model saved by `speechmix train` on a data set: clips "
                    "longer than the model's input are scored on evenly spaced "
                    "windows. Classes are matched to the model's by name.")
    evaluate.add_argument("model", help="a .keras file written by `speechmix train` "
                                        "(OUT/model.keras)")
    evaluate.add_argument("--data", required=True, metavar="SPEC", help=_DATA_HELP)
    evaluate.add_argument("--folds", type=_folds, default=None, metavar="LIST",
                          help="comma-separated folds to score, e.g. 3 (default: "
                               "every clip)")
    evaluate.add_argument("--sample-rate", type=_whole(1), default=None, metavar="HZ",
                          help="only for models saved without their rate: the rate "
                               "they take (default: the rate saved in the model)")
    evaluate.add_argument("--trim-silence", action=argparse.BooleanOptionalAction,
                          default=None,
                          help="cut leading/trailing digital silence (default: as the "
                               "model was trained, from its saved metadata)")
    evaluate.add_argument("--stream", action="store_true",
                          help="read the files as scoring goes (for large sets)")
    evaluate.add_argument("--json", action="store_true", help="print JSON only")

    predict = commands.add_parser(
        "predict", help="the most likely classes of audio files of any length",
        description="Print the most likely classes of each audio file, by a model "
                    "saved by `speechmix train` (files are resampled to the model's "
                    "rate; files longer than its input are scored on evenly spaced "
                    "windows).")
    predict.add_argument("model", help="a .keras file written by `speechmix train`")
    predict.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    predict.add_argument("--top", type=_whole(1), default=1,
                         help="classes to print per file (default %(default)s)")
    predict.add_argument("--json", action="store_true", help="print JSON only")
    return parser


def _default_budget_gb():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 / 1e9
    except (ValueError, OSError, AttributeError):
        return 8.0


def _split(clips, spec, train_folds, test_folds, seed):
    from keras_speechmix import datasets

    if test_folds:
        return datasets.split_by_fold(clips, test_folds, train_folds), \
            f"folds {train_folds or 'rest'} / test folds {test_folds}"
    if train_folds:
        raise ValueError("--train-folds needs --test-folds (the folds to test on)")
    if str(spec).startswith("fsdd:"):
        return datasets.fsdd_official_split(clips), "FSDD official split (takes 0-4 test)"
    return datasets.stratified_split(clips, 0.2, seed=seed), "stratified 80/20 split"


# The main job's task (see `run_demo`): real spoken digits shipped with the
# package (`datasets.builtin_digits`, FSDD at 8 kHz, 6 speakers). A quarter
# of the speakers, drawn with seed 0, are the test (yweweler), the last of
# the others by name validates (theo), the other 4 train on all their
# clips. A new voice is what plain training fails on and what SpeechMix
# helps most (FSDD benchmark). To fit 3 seeds into about 5 minutes on 2
# cores, the built-in set trains `epoch_share` of the recipe's epochs
# (mixing keeps its doubled epochs, and a change of the recipe still
# reaches the demo). How this was chosen: benchmarks/NOTES.md.
DEMO = dict(validation_speakers=1, epoch_share=0.25, seeds=3, mixes=("none", "speechmix"))


def _demo_epochs(mix, data):
    """The demo's epochs for method `mix`: the recipe's, a share of them on
    the built-in digits (`data` None)."""
    from keras_speechmix.experiment import RECIPE

    epochs = RECIPE["epochs" if mix == "none" else "mix_epochs"]
    return epochs if data else max(1, round(epochs * DEMO["epoch_share"]))


def _held_out_speakers(clips, seed=0):
    import numpy as np

    from keras_speechmix import datasets

    speakers = sorted(set(clips.groups))
    rng = np.random.RandomState(seed)
    # Plain str: NumPy 2 prints its own string scalars as np.str_('name').
    test = sorted(str(name) for name in
                  rng.choice(speakers, max(1, len(speakers) // 4), replace=False))
    return datasets.split_by_group(clips, test), test


def _first_per_speaker_and_class(clips, count):
    """Mask of the first `count` clips (in set order) of each speaker and class."""
    import numpy as np

    seen = {}
    keep = np.zeros(len(clips), bool)
    for i, key in enumerate(zip(clips.groups, clips.labels.tolist())):
        seen[key] = seen.get(key, 0) + 1
        keep[i] = seen[key] <= count
    return keep


class _QuietSkipWarning(logging.Filter):
    # The command lists every skipped file itself (`_report_load`).
    def filter(self, record):
        return "skipped %d of %d" not in str(record.msg)


def _load(spec, sample_rate, trim_silence=False, out=None):
    """Loads a dataset SPEC; prints its summary and every skipped file."""
    from keras_speechmix import datasets

    clips = datasets.load(spec, sample_rate=sample_rate)
    if trim_silence:
        clips = clips.trim_silence()
    print(clips.summary())
    _report_load(clips.report, out)
    return clips


def _plural(count, word):
    return f"{count} {word}" if count == 1 else f"{count} {word}{'es' if word.endswith('s') else 's'}"


def _report_load(report, out, shown=5):
    """Prints what a listing or load left out: class folders without audio,
    non-audio files, and each unreadable file with its reason (all of them
    also in OUT/skipped.csv)."""
    folders = [path for path, _ in report.skipped if Path(path).is_dir()]
    files = [(path, reason) for path, reason in report.skipped if not Path(path).is_dir()]
    if folders:
        print(f"Left out {_plural(len(folders), 'class folder')} without audio files: "
              + ", ".join(folders))
    if report.ignored:
        more = len(report.ignored) - shown
        print(f"Ignored {_plural(len(report.ignored), 'non-audio file')}: "
              + ", ".join(report.ignored[:shown]) + (f" and {more} more" if more > 0 else ""))
    _report_skipped(f"Skipped {len(files)} of {_plural(report.found, 'file')}:", files, out,
                    written=report.skipped)


def _report_stream_skips(log, out, listed=()):
    """Lists the files a stream skipped; OUT/skipped.csv also gets those the
    listing left out (`listed`)."""
    _report_skipped(f"Skipped {_plural(len(log.skipped), 'unreadable file')} while "
                    f"streaming ({log.failed_reads} of {_plural(log.reads, 'read')} "
                    "failed):", log.rows(), out, written=log.rows(listed))


def _report_skipped(title, rows, out, shown=20, written=None):
    """Prints `title` and the first `shown` `(path, reason)` rows; writes
    `written` (default: `rows`) to OUT/skipped.csv."""
    if not rows:
        if out is not None and written:
            from keras_speechmix.datasets import write_skipped

            out.mkdir(parents=True, exist_ok=True)
            write_skipped(out / "skipped.csv", written)
        return
    print(title)
    for path, reason in rows[:shown]:
        # Decoder messages often start with the path already.
        print(f"  {path}: {reason.removeprefix(f'{path}: ')}")
    if out is not None:
        from keras_speechmix.datasets import write_skipped

        out.mkdir(parents=True, exist_ok=True)
        write_skipped(out / "skipped.csv", rows if written is None else written)
    if len(rows) > shown:
        print(f"  ... and {len(rows) - shown} more"
              + (f"; all are listed in {out / 'skipped.csv'}" if out is not None else ""))
    elif out is not None:
        print(f"  (also listed in {out / 'skipped.csv'})")


def _progress(every):
    """A Keras callback printing one line every `every` epochs."""
    import keras

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            total = self.params.get("epochs") or 0
            if (epoch + 1) % every and epoch + 1 != total:
                return
            logs = logs or {}
            line = (f"  epoch {epoch + 1}/{total}: loss {logs.get('loss', float('nan')):.3f}, "
                    f"accuracy {logs.get('accuracy', float('nan')):.3f}")
            if "val_accuracy" in logs:
                line += f", validation accuracy {logs['val_accuracy']:.3f}"
            print(line, flush=True)

    return Progress()


def _fit_verdict(accuracy):
    if accuracy >= 0.99:
        return "the network fits its training data"
    return ("the network does not fit its training data yet: mixing, a "
            "regulariser, helps little until it does (train longer or pick a "
            "larger --model)")


def _mean_se(values):
    import numpy as np

    values = np.asarray(values, float)
    se = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else float("nan")
    return float(values.mean()), float(se)


def _comparison(results, mixes):
    """Per method: test errors per seed, mean ± s.e., and verdicts vs none."""
    import numpy as np

    table = {}
    for mix in mixes:
        runs = [r for r in results if r["mix"] == mix]
        mean, se = _mean_se([r["test_error"] for r in runs])
        table[mix] = dict(errors=[r["test_error"] for r in runs], mean=mean, se=se,
                          train_accuracy=float(np.mean([r["train_accuracy"] for r in runs])))
    lines = [f"{'method':<10} {'test error %':>15}   {'per seed':<20} {'train acc':>9}"]
    for mix, row in table.items():
        spread = "" if np.isnan(row["se"]) else f" ± {100 * row['se']:.1f}"
        seeds = " ".join(f"{100 * e:.1f}" for e in row["errors"])
        lines.append(f"{mix:<10} {100 * row['mean']:>8.1f}{spread:<7}   {seeds:<20} "
                     f"{100 * row['train_accuracy']:>8.0f}%")
    verdicts = []
    base = table.get("none")
    for mix, row in table.items():
        if mix == "none" or base is None:
            continue
        gap = base["mean"] - row["mean"]
        noise = float(np.hypot(base["se"], row["se"]))
        if np.isnan(noise):
            verdict = "one seed only, so no spread to judge the difference by"
        elif abs(gap) <= noise:
            verdict = "within the seeds' spread: no difference"
        else:
            verdict = "beyond the seeds' spread"
        better = gap > 0
        relative = (f" ({100 * abs(gap) / base['mean']:.0f} % {'better' if better else 'worse'})"
                    if base["mean"] else "")
        verdicts.append(
            f"{mix}: {100 * abs(gap):.1f} points {'less' if better else 'more'} test error "
            f"than no mixing{relative}; combined s.e. {100 * noise:.1f}: {verdict}.")
        row.update(gap=gap, combined_se=noise, verdict=verdict)
    return table, "\n".join(lines), verdicts


def run_demo(args):
    """`speechmix demo`: SpeechMix against no mixing, several seeds, on
    speakers never trained on."""
    from keras_speechmix import datasets, experiment, plots

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mixes = [m.strip() for m in args.mixes.split(",") if m.strip()]
    unknown = sorted(set(mixes) - set(experiment.MIXES))
    if unknown or not mixes:
        raise ValueError(f"--mixes: unknown method(s) {unknown}; choose from "
                         f"{experiment.MIXES}")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; received {args.seeds}")
    started = time.perf_counter()
    load = os.getloadavg()
    if args.data:
        clips = _load(args.data, 16000, out=out)
    else:
        clips = datasets.builtin_digits()
        print("Built-in spoken digits (Free Spoken Digit Dataset, Zohar Jackson et al., "
              "CC BY-SA 4.0)")
        print(clips.summary())
    takes = args.takes
    if clips.groups:
        # One split for every seed, so that the spread is the training's.
        (train, test), held_out = _held_out_speakers(clips)
        speakers = sorted(set(train.groups))
        if len(speakers) < 2:
            raise ValueError(f"the demo needs at least 2 speakers besides the test "
                             f"speakers; {args.data} has {speakers}")
        held = speakers[-max(1, min(DEMO["validation_speakers"], len(speakers) - 1)):]
        train, validation = datasets.split_by_group(train, held)
        if takes:
            train = train.subset(_first_per_speaker_and_class(train, takes))
        split = dict(train=sorted(set(train.groups)), validation=held, test=held_out,
                     takes_per_training_speaker=takes)
        description = (f"training speakers {split['train']}"
                       + (f" ({takes} of each class each)" if takes else "")
                       + f", validation speaker(s) {held}, test speaker(s) {held_out} "
                         "(never trained on)")
    else:
        (train, test), description = _split(clips, args.data, None, None, 0)
        train, validation = datasets.validation_split(train, 0.1, seed=0)
        split = {}
    split["description"] = description
    print(f"Split: {description}: {len(train)} train / {len(validation)} validation (for "
          f"the curves) / {len(test)} test clips (scored once per run), {clips.sample_rate} Hz")
    results, models = [], {}
    for seed in range(args.seeds):
        for mix in mixes:
            print(f"\n== {mix}, seed {seed} ==", flush=True)
            models[mix], result = experiment.train_clips(
                train, test, validation=validation, mix=mix,
                epochs=args.epochs or _demo_epochs(mix, args.data), seed=seed, verbose=0,
                callbacks=[_progress(10)] if args.progress and not args.quiet else [])
            result["label"] = f"{mix} (seed {seed})"
            print(f"test error {100 * result['test_error']:.1f} %; training clips "
                  f"{100 * result['train_accuracy']:.0f} % ({result['seconds']:.0f} s)")
            results.append(result)
    table, text, verdicts = _comparison(results, mixes)
    print(f"\nTest error on {len(test)} held-out clips, mean ± s.e. over "
          f"{args.seeds} seed(s) (train acc: training clips, inference mode):")
    print(text)
    for line in verdicts:
        print(line)
    summary = {
        "data": args.data or "built-in spoken digits (datasets.builtin_digits)",
        "split": split,
        "sample_rate": clips.sample_rate,
        "recipe": dict(experiment.RECIPE),
        # 1, 5 and 15 minute load averages when the run started and ended:
        # timings taken on shared cores read slower.
        "load_average": dict(start=[round(v, 2) for v in load],
                             end=[round(v, 2) for v in os.getloadavg()]),
        "num_train": len(train),
        "num_validation": len(validation),
        "num_test": len(test),
        "seconds_total": round(time.perf_counter() - started, 1),
        "comparison": table,
        "verdicts": verdicts,
        "runs": results,
        "load_report": dataclasses.asdict(clips.report),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str))
    first = [next(r for r in results if r["mix"] == mix) for mix in mixes]
    plots.plot_curves(first, out / "curves.png")
    plots.plot_confusion(first, out / "confusion.png")
    pictures = "curves.png, confusion.png"
    if "speechmix" in models:
        plots.plot_mixing(_mixing_panels(models["speechmix"], test), out / "mixing.png")
        pictures += ", mixing.png"
    print(f"\nWrote {out / 'results.json'}, {pictures} "
          f"({summary['seconds_total']:.0f} s in all)")
    return summary


def _check_out(out, overwrite):
    """Refuses an --out that cannot take the results, before any work."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (it will hold model.keras, "
                         "metrics.json and the pictures)")
    if (out / "model.keras").exists() and not overwrite:
        raise ValueError(f"--out {out} already holds a model (model.keras): pass "
                         "--overwrite to replace it, or choose another folder")


def _check_folds(files, data, test_folds, train_folds=None, option="--test-folds"):
    """Checks fold options against a listing, before anything is decoded."""
    if train_folds and not test_folds:
        raise ValueError("--train-folds needs --test-folds (the folds to test on)")
    if not test_folds:
        return
    if files.folds is None:
        raise ValueError(f"{option}: {data} has no folds (a CSV with a fold column has)")
    known = sorted(set(files.folds.tolist()))
    for name, folds in ((option, test_folds), ("--train-folds", train_folds)):
        unknown = sorted(set(folds or ()) - set(known))
        if unknown:
            raise ValueError(f"{name} {','.join(map(str, folds))}: {data} has no fold "
                             f"{', '.join(map(str, unknown))}; its folds are "
                             f"{', '.join(map(str, known))}")
    overlap = sorted(set(test_folds) & set(train_folds or ()))
    if overlap:
        raise ValueError(f"fold(s) {overlap} are in both --train-folds and --test-folds")


def _percent(accuracy):
    return f"accuracy {100 * accuracy:.1f} % (error {100 * (1 - accuracy):.1f} %)"


def run_train(args):
    """`speechmix train`: one method on one dataset; saves model, metrics, pictures."""
    from keras_speechmix import experiment, multiworker, plots, saved, streaming

    rate = args.sample_rate or experiment.NETWORKS[args.model]["sample_rate"]
    out = Path(args.out)
    if not multiworker.worker_index():
        _check_out(out, args.overwrite)
    files = streaming.list_files(args.data, rate)
    _check_folds(files, args.data, args.test_folds, args.train_folds)
    stream = args.stream or bool(args.cache)
    needed = 0 if stream else files.estimated_bytes()  # reads every WAV header
    if needed > args.memory_budget * 1e9:
        stream = True
        print(f"The decoded clips would take about {needed / 1e9:.1f} GB, "
              f"more than --memory-budget {args.memory_budget:.1f} GB: streaming them "
              "from disk instead")
    if stream:
        if args.trim_silence:
            files = files.trim_silence()
        if files.multi_label:
            raise ValueError(
                f"{args.data} is multi-label; speechmix train trains single-label "
                "classifiers (softmax). Stream it with keras_speechmix.streaming into a "
                "sigmoid-output model of your own.")
        print(files.summary())
        _report_load(files.report, out)
        if args.cache:
            started = time.perf_counter()
            files = files.cached(args.cache)
            print(f"Decoded and resampled the files once into {args.cache} "
                  f"({time.perf_counter() - started:.0f} s; later runs reuse them)")
        elif any(Path(p).suffix.lower() in (".ogg", ".mp3", ".flac") for p in files.paths):
            print("Note: compressed files are decoded (and resampled) again every epoch; "
                  "--cache DIR does it once")
        clips = files
    else:
        clips = _load(args.data, rate, args.trim_silence, out)
    (train, test), split = _split(clips, args.data, args.train_folds, args.test_folds,
                                  args.seed)
    train, validation = experiment.hold_out_validation(train, args.validation, args.seed)
    workers = multiworker.worker_count()
    if workers > 1:
        print(f"Training on {workers} workers (TF_CONFIG, MultiWorkerMirroredStrategy); "
              f"this is worker {multiworker.worker_index()}; each reads 1/{workers} "
              "of the training clips")
    print(f"Split: {split}: {len(train)} train / "
          + (f"{len(validation)} validation (held out of the training data, for the "
             "curves) / " if validation is not None else "")
          + f"{len(test)} test clips (scored once, after training)")
    length = None if args.clip_seconds is None else max(1, round(args.clip_seconds * rate))
    try:
        model, result = experiment.train_clips(
            train, test, validation=validation, mix=args.mix, model=args.model,
            epochs=args.epochs, seed=args.seed, length=length,
            batch_size=args.batch_size, learning_rate=args.learning_rate,
            alpha=args.alpha, mix_off=args.mix_off, verbose=0,
            callbacks=[] if args.quiet else [_progress(10)],
            max_skipped=args.max_skipped, backup_dir=args.backup,
            save_every=args.save_every)
    finally:
        if stream:
            _report_stream_skips(files.skips, out, files.report.skipped)
    rank = multiworker.worker_index()
    if rank:
        print(f"Worker {rank} done: the chief (worker 0) writes the model and metrics.")
        return result
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.keras"
    saved.save_model(model, model_path, sample_rate=result["sample_rate"],
                     class_names=result["class_names"], input_length=result["input_length"],
                     network=args.model, mix=args.mix, epochs=result["epochs"],
                     trim_silence=args.trim_silence)
    result.update(split=split, data=str(args.data), trim_silence=args.trim_silence,
                  streamed=stream, load_report=dataclasses.asdict(clips.report))
    if stream:
        result["skipped_files"] = dict(sorted(files.skips.skipped.items()))
    (out / "metrics.json").write_text(json.dumps(result, indent=2, default=str))
    plots.plot_curves([result], out / "curves.png")
    plots.plot_confusion([result], out / "confusion.png")
    print(f"\n{args.model}, {args.mix}, {_plural(result['epochs'], 'epoch')}, "
          f"{result['seconds']:.0f} s of training:")
    print(f"  training clips (inference mode): {_percent(result['train_accuracy'])}: "
          f"{_fit_verdict(result['train_accuracy'])}")
    if "validation_accuracy" in result:
        print(f"  validation ({_plural(result['num_validation'], 'clip')} held out of the "
              f"training data): {_percent(result['validation_accuracy'])}")
    print(f"  test ({_plural(result['num_test'], 'clip')}, scored once): "
          f"{_percent(result['test_accuracy'])}")
    print(f"Wrote {model_path}, metrics.json, curves.png, confusion.png"
          + (", skipped.csv" if clips.report.skipped or (stream and files.skips.skipped)
             else ""))
    print(_usage(model_path, result))
    return result


def _usage(model_path, result):
    """How to use a saved model, as `train` prints it."""
    names = result["class_names"]
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    rate, length = result["sample_rate"], result["input_length"]
    return (f"The model takes mono waveforms of {length} samples ({length / rate:g} s) at "
            f"{rate} Hz and gives the probabilities of {_plural(len(names), 'class')}: "
            f"{shown} (all three are stored in the file's metadata). Longer clips are "
            "scored on evenly spaced windows:\n"
            f"  speechmix predict {model_path} FILE...\n"
            f"  speechmix evaluate {model_path} --data SPEC\n"
            "  In Python: import keras_speechmix as ksm\n"
            f"    model = ksm.load_model(\"{model_path}\")  # or keras.models.load_model, "
            "after importing keras_speechmix\n"
            f"    names = ksm.model_info(\"{model_path}\")[\"class_names\"]\n"
            f"    probabilities = ksm.predict_clips(model, waves)  # waves at {rate} Hz, "
            "any length")


def _mixing_panels(model, clips):
    import keras
    import numpy as np

    names = [n for n in ("mix_input", "mix_block1") if
             any(layer.name == n for layer in model.layers)]
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    length = model.input_shape[1]
    first = int(np.argmax(clips.labels != clips.labels[0]))
    pair = np.stack([np.pad(w[:length], (0, max(0, length - len(w))))
                     for w in (clips.waveforms[0], clips.waveforms[first])])
    outputs = probe.predict(pair.astype("float32"), verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    titles = {"mix_input": "input log-mel", "mix_block1": "block 1 (channel mean)"}
    # The mix as training makes it: the point's own layer (its rule and
    # gains), clip A with clip B at r = 0.5.
    plan = {"partner": np.array([1, 0], "int32"), "ratio": np.full(2, 0.5, "float32"),
            "point": np.ones((2, 1), "int32")}
    panels = []
    for name, output in zip(names, outputs):
        layer = model.get_layer(name)
        point = type(layer).from_config({**layer.get_config(), "index": 0})
        mixed = np.asarray(point(output, plan=plan, training=True))
        # Channel mean makes a (frames, features) image of any activation.
        panels.append((f"{titles[name]}, {point.rule} rule", output[0].mean(axis=-1),
                       output[1].mean(axis=-1), mixed[0].mean(axis=-1)))
    return panels


def _model_rate(model):
    for layer in model._flatten_layers(include_self=False, recursive=True):
        rate = getattr(layer, "sample_rate", None)
        if isinstance(rate, int):
            return rate
    return None


def _model_and_rate(path, sample_rate=None):
    """`(model, info, rate)` of a saved model; refuses a --sample-rate that is
    not the model's."""
    from keras_speechmix import saved

    info = saved.model_info(path)  # names what is wrong with the path
    saved_rate = info.get("sample_rate")
    if saved_rate and sample_rate and sample_rate != saved_rate:
        raise ValueError(
            f"--sample-rate {sample_rate}: the model takes audio at {saved_rate} Hz "
            "(files are resampled to it; leave --sample-rate out)")
    model = saved.load_model(path)
    rate = saved_rate or sample_rate or _model_rate(model)
    if rate is None:
        raise ValueError(f"{path} records no sample rate and has no feature layer "
                         "with one: pass --sample-rate")
    return model, info, rate


def _class_map(data, data_names, model_names, num_outputs):
    """Index of each data class among the model's outputs, matched by name."""
    import numpy as np

    if not model_names:  # a model saved without its class names
        if len(data_names) != num_outputs:
            raise ValueError(f"the model predicts {num_outputs} classes but {data} has "
                             f"{len(data_names)}")
        return np.arange(num_outputs), list(data_names)
    unknown = [name for name in data_names if name not in model_names]
    if unknown:
        raise ValueError(
            f"{data} has classes the model was not trained on: {', '.join(unknown)}; "
            f"the model's classes are {', '.join(model_names)}")
    return np.array([model_names.index(name) for name in data_names]), list(model_names)


def run_evaluate(args):
    """`speechmix evaluate`: accuracy and confusion matrix of a saved model."""
    import numpy as np

    from keras_speechmix import datasets, streaming
    from keras_speechmix.saved import predict_clips

    model, info, rate = _model_and_rate(args.model, args.sample_rate)
    length = info.get("input_length") or model.input_shape[1]
    # Classes and folds are checked on the listing, before anything is decoded.
    files = streaming.list_files(args.data, rate)
    _check_folds(files, args.data, args.folds, option="--folds")
    to_model, names = _class_map(args.data, files.class_names, info.get("class_names"),
                                 model.output_shape[-1])
    if args.stream:
        clips = files
    else:
        clips = datasets.load(args.data, sample_rate=rate)
    trim = info.get("trim_silence", False) if args.trim_silence is None else args.trim_silence
    if trim:
        clips = clips.trim_silence()
    if args.folds:
        _, clips = datasets.split_by_fold(clips, args.folds)
    if args.stream:
        probabilities, labels = streaming.predict_files(model, clips, length)
        skipped = {**dict(files.report.skipped), **clips.skips.skipped}
    else:
        probabilities = predict_clips(model, clips.waveforms, length)
        labels = clips.labels
        skipped = dict(clips.report.skipped)
    labels = to_model[labels]
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((len(names), len(names)), int)
    np.add.at(confusion, (labels, predicted), 1)
    result = {"accuracy": float(np.mean(predicted == labels)),
              "error": float(np.mean(predicted != labels)),
              "num_clips": len(labels), "class_names": names,
              "confusion": confusion.tolist(),
              "skipped_files": {path: datasets.skip_reason(path, reason)
                                for path, reason in sorted(skipped.items())}}
    if args.json:
        print(json.dumps(result))
        return result
    if list(files.class_names) != names[:len(files.class_names)]:
        print(f"Classes matched to the model's by name ({args.data} lists them in "
              "another order or has fewer)")
    _report_load(files.report if args.stream else clips.report, None)
    if args.stream:
        _report_skipped(f"Skipped {_plural(len(clips.skips.skipped), 'unreadable file')}:",
                        sorted(clips.skips.skipped.items()), None)
    print(f"{_percent(result['accuracy'])} on {_plural(result['num_clips'], 'clip')}")
    width = max(len(n) for n in names)
    print("Confusion (rows: true class, columns: predicted, in this order):")
    for name, row in zip(names, confusion):
        print(f"{name:>{width}} " + " ".join(f"{v:4d}" for v in row))
    return result


def run_predict(args):
    """`speechmix predict`: the most likely classes of each file."""
    from keras_speechmix import audio
    from keras_speechmix.saved import predict_clips

    model, info, rate = _model_and_rate(args.model)
    names = info.get("class_names") or [str(k) for k in range(model.output_shape[-1])]
    waves, paths, failed = [], [], {}
    for path in args.files:
        try:
            waves.append(audio.load_audio(path, rate)[0])
            paths.append(path)
        except (audio.AudioDecodeError, OSError) as error:
            failed[path] = str(error).removeprefix(f"{path}: ")
    result = {"predictions": {}, "skipped_files": failed}
    if waves:
        probabilities = predict_clips(model, waves, info.get("input_length")
                                      or model.input_shape[1])
        for path, row in zip(paths, probabilities):
            best = row.argsort()[::-1][:args.top]
            result["predictions"][path] = [[names[k], float(row[k])] for k in best]
    if args.json:
        print(json.dumps(result))
    else:
        for path, best in result["predictions"].items():
            print(f"{path}: " + ", ".join(f"{name} ({100 * p:.1f} %)" for name, p in best))
        for path, reason in failed.items():
            print(f"{path}: not scored: {reason}", file=sys.stderr)
    if not waves:
        raise ValueError(f"none of the {_plural(len(args.files), 'file')} could be read")
    return result


def main(argv=None):
    """Entry point of the `speechmix` console script.

    Example:

    >>> # main(["demo", "--out", "speechmix-out"])
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        from keras_speechmix import multiworker

        # Before anything else runs a TensorFlow op: collectives are set up
        # first or never.
        early = argparse.ArgumentParser(add_help=False)
        early.add_argument("--collective-timeout", type=float, default=120.0)
        multiworker.strategy_from_env(early.parse_known_args(argv[1:])[0].collective_timeout)
    args = _parser().parse_args(argv)
    import tensorflow as tf

    # Scoped to this call: main() also runs inside other programs (and the
    # tests), whose logging must not stay changed afterwards.
    quiet, datasets_logger = _QuietSkipWarning(), logging.getLogger("keras_speechmix.datasets")
    datasets_logger.addFilter(quiet)
    # Each compared model traces its own predict function; TF's retracing
    # warnings about that are noise in a command's output.
    tf_level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")
    runner = {"demo": run_demo, "train": run_train, "evaluate": run_evaluate,
              "predict": run_predict}[args.command]
    try:
        with warnings.catch_warnings():
            # A stream's length is unknown until its first epoch ends; Keras
            # says so with this warning, which is expected here.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            runner(args)
    except (ValueError, OSError, RuntimeError) as error:
        # One exit status for every error the command explains, as argparse's.
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        datasets_logger.removeFilter(quiet)
        tf.get_logger().setLevel(tf_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
