"""What the command prints: load and skip reports, progress, the comparison table."""

import logging
from pathlib import Path


class _QuietSkipWarning(logging.Filter):
    # The command lists every skipped file itself (`_report_load`).
    def filter(self, record):
        return "skipped %d of %d" not in str(record.msg)


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
            from keras_speechmix.audio.datasets import write_skipped

            out.mkdir(parents=True, exist_ok=True)
            write_skipped(out / "skipped.csv", written)
        return
    print(title)
    for path, reason in rows[:shown]:
        # Decoder messages often start with the path already.
        print(f"  {path}: {reason.removeprefix(f'{path}: ')}")
    if out is not None:
        from keras_speechmix.audio.datasets import write_skipped

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
        paired = _paired_clean(results, mix)
        words = "" if paired is None else (
            f"; clip by clip over the seeds, {paired['a_only']} clips only {mix} gets right "
            f"and {paired['b_only']} only no mixing (McNemar p = {paired['p']:.2f}): "
            + ("resolved" if paired["p"] < 0.05 else "no resolved difference"))
        verdicts.append(
            f"{mix}: {100 * abs(gap):.1f} points {'less' if better else 'more'} test error "
            f"than no mixing{relative}; combined s.e. {100 * noise:.1f}: {verdict}{words}.")
        row.update(gap=gap, combined_se=noise, verdict=verdict, mcnemar=paired)
    return table, "\n".join(lines), verdicts


def _paired_clean(results, mix, baseline="none"):
    """McNemar's test of `mix` against `baseline` on the clean test clips,
    pooled over the seeds both ran; `None` without per-clip scores."""
    import numpy as np

    from keras_speechmix.training.paired import mcnemar

    def correct(name):
        return {r["seed"]: r["shifts"]["clean"]["correct"] for r in results
                if r["mix"] == name and "clean" in r.get("shifts", {})}

    mine, base = correct(mix), correct(baseline)
    seeds = sorted(set(mine) & set(base))
    if not seeds:
        return None
    return mcnemar(np.concatenate([mine[s] for s in seeds]),
                   np.concatenate([base[s] for s in seeds]))


def _percent(accuracy):
    return f"accuracy {100 * accuracy:.1f} % (error {100 * (1 - accuracy):.1f} %)"


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
