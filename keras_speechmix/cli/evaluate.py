"""`speechmix evaluate` and `speechmix predict`: a saved model on files."""

import json
import sys

from keras_speechmix.cli.data import _check_folds
from keras_speechmix.cli.report import _percent, _plural, _report_load, _report_skipped


def _model_rate(model):
    for layer in model._flatten_layers(include_self=False, recursive=True):
        rate = getattr(layer, "sample_rate", None)
        if isinstance(rate, int):
            return rate
    return None


def _model_and_rate(path, sample_rate=None):
    """`(model, info, rate)` of a saved model; refuses a --sample-rate that is
    not the model's."""
    from keras_speechmix.models import saved

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

    from keras_speechmix.audio import datasets, streaming
    from keras_speechmix.models.saved import predict_clips

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
    from keras_speechmix.models.saved import predict_clips

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
