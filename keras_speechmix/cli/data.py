"""Data for a command: loading, splits, folds and the output folder, checked early."""

import tempfile
from pathlib import Path

from keras_speechmix.cli.report import _plural, _report_load


def _split(clips, spec, train_folds, test_folds, seed):
    from keras_speechmix.audio import datasets

    if test_folds:
        return datasets.split_by_fold(clips, test_folds, train_folds), \
            f"folds {train_folds or 'rest'} / test folds {test_folds}"
    if train_folds:
        raise ValueError("--train-folds needs --test-folds (the folds to test on)")
    if str(spec).startswith("fsdd:"):
        return datasets.fsdd_official_split(clips), "FSDD official split (takes 0-4 test)"
    return datasets.stratified_split(clips, 0.2, seed=seed), "stratified 80/20 split"


def _load(spec, sample_rate, trim_silence=False, out=None):
    """Loads a dataset SPEC; prints its summary and every skipped file."""
    from keras_speechmix.audio import datasets

    clips = datasets.load(spec, sample_rate=sample_rate)
    if trim_silence:
        clips = clips.trim_silence()
    print(clips.summary())
    _report_load(clips.report, out)
    return clips


def _check_out(out, overwrite):
    """Refuses an --out that cannot take the results, before any work."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (it will hold model.keras, "
                         "metrics.json and the pictures)")
    if (out / "model.keras").exists() and not overwrite:
        raise ValueError(f"--out {out} already holds a model (model.keras): pass "
                         "--overwrite to replace it, or choose another folder")
    above = next(folder for folder in (out, *out.parents) if folder.exists())
    if not above.is_dir():
        raise ValueError(f"--out {out}: {above} is a file, so no folder can be made "
                         "inside it; give a folder path")


def _make_out(out):
    """Makes --out and writes a probe file in it: an unwritable place is found
    before the files are decoded, not when the results are saved."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise ValueError(f"--out {out}: cannot write there ({error.strerror or error}); "
                         "choose a folder you can write to") from None


def _untrained(labels, names):
    """The names of the classes no label in `labels` is."""
    import numpy as np

    present = set(np.asarray(labels).tolist())
    return [name for k, name in enumerate(names) if k not in present]


def _check_fold_classes(files, data, test_folds, train_folds=None):
    """Refuses folds that leave a class without training clips, before decoding:
    the model would get an output it never trained on."""
    import numpy as np

    if not test_folds or files.multi_label:
        return
    training = (np.isin(files.folds, train_folds) if train_folds
                else ~np.isin(files.folds, test_folds))
    if not training.any():
        return  # no training fold at all: the split says so
    missing = _untrained(files.labels[training], files.class_names)
    if missing:
        where = "; ".join(
            f"{name} in fold {', '.join(map(str, sorted(set(files.folds[files.labels == k].tolist()))))}"
            for k, name in enumerate(files.class_names) if name in missing)
        used = sorted(set(files.folds[training].tolist()))
        raise ValueError(
            f"{_plural(len(missing), 'class')} of {data} ha{'s' if len(missing) == 1 else 've'} "
            f"no clip in the training folds ({', '.join(map(str, used))}): {where}. A "
            "model cannot learn a class it never sees: change --train-folds/--test-folds "
            "or leave the class out of the data")


def _check_trained_classes(train, names, after):
    """Refuses a training set that lacks a class (`after`: what removed it)."""
    if getattr(train, "multi_label", False):
        return
    missing = _untrained(train.labels, names)
    if missing:
        raise ValueError(
            f"{_plural(len(missing), 'class')} ha{'s' if len(missing) == 1 else 've'} no "
            f"training clip {after}: {', '.join(missing)}. A model cannot learn a class "
            "it never sees")


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
