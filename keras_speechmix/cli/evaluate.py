"""`speechmix evaluate`: a saved model scored on a data set."""

import json

from keras_speechmix.cli.data import _check_folds
from keras_speechmix.cli.report import _percent, _plural, _report_load, _report_skipped


def _model_and_rate(path, sample_rate=None, temperature=True):
    """`(model, info, rate)` of a saved model. The rate is the one saved in
    the file, else its feature layer's, else `sample_rate` (--sample-rate);
    a --sample-rate that is not the model's is refused. `temperature=False`
    (--no-temperature) takes the model's temperature layer off."""
    from keras_speechmix import calibration
    from keras_speechmix.models import saved

    info = saved.model_info(path)  # names what is wrong with the path
    model = saved.load_model(path)
    if not temperature:
        model = calibration.with_temperature(model, None)
    known = info.get("sample_rate") or saved.feature_sample_rate(model)
    if known and sample_rate and sample_rate != known:
        where = ("recorded in the file" if info.get("sample_rate")
                 else "its feature layer's rate")
        raise ValueError(
            f"--sample-rate {sample_rate}: the model takes audio at {known} Hz ({where}; "
            "files are resampled to it): leave --sample-rate out")
    rate = known or sample_rate
    if rate is None:
        raise ValueError(
            f"{path} records no sample rate and has no feature layer that gives one "
            "(LogMelSpectrogram, keras.layers.MelSpectrogram): pass --sample-rate HZ, "
            "the rate it was trained at")
    return model, info, rate


def _short_clips(paths, waves, length, rate):
    """Notes on clips under half the model's input: scored mostly on padding."""
    short = [(path, len(wave)) for path, wave in zip(paths, waves) if 2 * len(wave) < length]
    if not short:
        return []
    shown = ", ".join(f"{path} ({_seconds(n, rate)})" for path, n in short[:5])
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    return [f"{_plural(len(short), 'clip')} shorter than half the model's input "
            f"({_seconds(length, rate)}), scored mostly on zero padding: {shown}{more}"]


def _seconds(samples, rate):
    return f"{samples} samples = {samples / rate:.3g} s"


def _class_map(data, data_names, model_names, num_outputs):
    """Index of each data class among the model's outputs, matched by name."""
    import numpy as np

    if not model_names:  # a model saved without its class names
        if len(data_names) != num_outputs:
            raise ValueError(f"the model records no class names and predicts "
                             f"{num_outputs} classes, but {data} has {len(data_names)}")
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

    from keras_speechmix import calibration
    from keras_speechmix.audio import datasets, streaming
    from keras_speechmix.models.saved import predict_clips

    if args.shift and args.stream:
        raise ValueError("--shift scores the clips in memory; leave out --stream")
    model, info, rate = _model_and_rate(args.model, args.sample_rate, args.temperature)
    length = info.get("input_length") or model.input_shape[1]
    # Classes and folds are checked on the listing, before anything is decoded.
    files = streaming.list_files(args.data, rate)
    _check_folds(files, args.data, args.folds, option="--folds")
    to_model, names = _class_map(args.data, files.class_names, info.get("class_names"),
                                 model.output_shape[-1])
    notes = []
    if not info.get("class_names"):
        notes.append("The model records no class names: the data set's classes are "
                     "matched to its outputs by position (" + ", ".join(
                         f"output {k} = {name}" for k, name in enumerate(names)) + ")")
    if args.stream:
        clips = files
    else:
        # Scoring a set of one class is legitimate (training on one is not).
        clips = datasets.load(args.data, sample_rate=rate, min_classes=1)
    trim = info.get("trim_silence", False) if args.trim_silence is None else args.trim_silence
    if trim:
        clips = clips.trim_silence()
    if args.folds:
        _, clips = datasets.split_by_fold(clips, args.folds)
    if args.stream:
        probabilities, labels = streaming.predict_files(model, clips, length)
        skipped = {**dict(files.report.skipped), **clips.skips.skipped}
    else:
        notes += _short_clips(clips.paths, clips.waveforms, length, rate)
        probabilities = predict_clips(model, clips.waveforms, length)
        labels = clips.labels
        skipped = dict(clips.report.skipped)
    labels = to_model[labels]
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((len(names), len(names)), int)
    np.add.at(confusion, (labels, predicted), 1)
    result = {"accuracy": float(np.mean(predicted == labels)),
              "error": float(np.mean(predicted != labels)),
              "ece": calibration.expected_calibration_error(probabilities, labels),
              "nll": calibration.negative_log_likelihood(probabilities, labels),
              "temperature": calibration.temperature_of(model),
              "num_clips": len(labels), "class_names": names,
              "confusion": confusion.tolist(), "notes": notes,
              "skipped_files": {path: datasets.skip_reason(path, reason)
                                for path, reason in sorted(skipped.items())}}
    if args.shift:
        result["shifts"] = _shifted(args, model, clips, length, labels,
                                    dict(correct=predicted == labels, ece=result["ece"]))
    if args.json:
        print(json.dumps(result))
        return result
    if info.get("class_names") and list(files.class_names) != names[:len(files.class_names)]:
        print(f"Classes matched to the model's by name ({args.data} lists them in "
              "another order or has fewer)")
    for note in notes:
        print(f"Note: {note}")
    _report_load(files.report if args.stream else clips.report, None)
    if args.stream:
        _report_skipped(f"Skipped {_plural(len(clips.skips.skipped), 'unreadable file')}:",
                        sorted(clips.skips.skipped.items()), None)
    print(f"{_percent(result['accuracy'])} on {_plural(result['num_clips'], 'clip')}")
    print(f"Calibration: ECE {100 * result['ece']:.1f} % (10 bins), NLL {result['nll']:.3f}"
          + (f" (the model's temperature {result['temperature']:.2f})"
             if result["temperature"] != 1.0 else " (the model has no temperature)"))
    if args.shift:
        _print_shifts(result["shifts"], args.picture)
    width = max(len(n) for n in names)
    print("Confusion (rows: true class, columns: predicted, in this order):")
    for name, row in zip(names, confusion):
        print(f"{name:>{width}} " + " ".join(f"{v:4d}" for v in row))
    return result


def _shifted(args, model, clips, length, labels, clean):
    """Error, ECE, NLL and the paired test against the clean clips (`clean`:
    their correctness and ECE) under each `--shift`; draws `--picture`."""
    from keras_speechmix.audio.shifts import SHIFTS, apply_shift
    from keras_speechmix.cli import plots
    from keras_speechmix.models.saved import predict_clips
    from keras_speechmix.training.paired import compare_shifts, mcnemar, shift_score

    names = []
    for shift in args.shift:
        names += [s for s in (SHIFTS[1:] if shift == "all" else [shift]) if s not in names]
    clean_correct = clean["correct"]
    scores = {"clean": {"error": float(1 - clean_correct.mean()), "ece": clean["ece"],
                        "correct": clean_correct.astype(int).tolist()}}
    for shift in names:
        waves = apply_shift(clips.waveforms, shift, seed=args.shift_seed, labels=clips.labels)
        scores[shift] = shift_score(predict_clips(model, waves, length), labels)
        scores[shift]["against_clean"] = mcnemar(scores[shift]["correct"], clean_correct)
    table = compare_shifts([{"mix": "model", "seed": args.shift_seed, "shifts": scores}],
                           ["model"])
    plots.plot_robustness(table, args.picture, title=f"{args.model} on {args.data}")
    return scores


def _print_shifts(scores, picture):
    print("Under recording shifts (the same clips changed at scoring time; McNemar "
          "against the clean clips: clips only the shifted scoring gets right : only "
          "the clean one):")
    print(f"{'shift':<14} {'error %':>8} {'ECE %':>6}   against clean")
    for shift, score in scores.items():
        if shift == "clean":
            print(f"{shift:<14} {100 * score['error']:8.1f} {100 * score['ece']:6.1f}")
            continue
        test = score["against_clean"]
        words = "resolved" if test["p"] < 0.05 else "not resolved"
        print(f"{shift:<14} {100 * score['error']:8.1f} {100 * score['ece']:6.1f}   "
              f"{test['a_only']}:{test['b_only']} p={test['p']:.3f} {words}")
    print(f"Wrote {picture}")
