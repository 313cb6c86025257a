"""Data for a command: loading, splits, folds and the output folder, checked early."""


from keras_speechmix.cli.report import _report_load


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
