"""`speechmix train`: one run of the default recipe, saved with its plots."""

import dataclasses
import json
import time
from pathlib import Path

from keras_speechmix.cli.data import (
    _check_fold_classes, _check_folds, _check_out, _check_trained_classes, _load, _make_out,
    _split)
from keras_speechmix.cli.report import (
    _fit_verdict, _percent, _plural, _progress, _report_load, _report_stream_skips, _usage)


def run_train(args):
    """`speechmix train`: one method on one dataset; saves model, metrics, pictures."""
    from keras_speechmix.audio import streaming
    from keras_speechmix.training import experiment, multiworker

    rate = args.sample_rate or experiment.NETWORKS[args.model]["sample_rate"]
    out = Path(args.out)
    if not multiworker.worker_index():
        _check_out(out, args.overwrite)
    files = streaming.list_files(args.data, rate)
    _check_folds(files, args.data, args.test_folds, args.train_folds)
    _check_fold_classes(files, args.data, args.test_folds, args.train_folds)
    if not multiworker.worker_index():
        _make_out(out)
    clips, stream = _clips_or_stream(args, files, rate, out)
    (train, test), split = _split(clips, args.data, args.train_folds, args.test_folds,
                                  args.seed)
    # Unreadable files, or a split such as FSDD's, can still leave a class out.
    _check_trained_classes(train, clips.class_names, f"in the split ({split})")
    train, validation = experiment.hold_out_validation(train, args.validation, args.seed)
    _check_trained_classes(train, clips.class_names,
                           f"once --validation {args.validation:g} of the training clips "
                           "is held out for the curves (lower it, or 0 for none)")
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
    if length and not stream:
        _note_padding(args.clip_seconds, length, train)
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
            _report_stream_skips(clips.skips, out, clips.report.skipped)
    rank = multiworker.worker_index()
    if rank:
        print(f"Worker {rank} done: the chief (worker 0) writes the model and metrics.")
        return result
    result.update(split=split, data=str(args.data), trim_silence=args.trim_silence,
                  streamed=stream, load_report=dataclasses.asdict(clips.report))
    if stream:
        result["skipped_files"] = dict(sorted(clips.skips.skipped.items()))
    model_path = _save_run(args, model, result, out)
    _print_run(args, result, model_path,
               skipped=clips.report.skipped or (stream and clips.skips.skipped))
    return result


def _clips_or_stream(args, files, rate, out):
    """`(clips, streamed)`: the listed files decoded into memory, or streamed
    from disk when asked (`--stream`, `--cache`) or when decoding them all
    would pass `--memory-budget`."""
    stream = args.stream or bool(args.cache)
    needed = 0 if stream else files.estimated_bytes()  # reads every WAV header
    if needed > args.memory_budget * 1e9:
        stream = True
        print(f"The decoded clips would take about {needed / 1e9:.1f} GB, "
              f"more than --memory-budget {args.memory_budget:.1f} GB: streaming them "
              "from disk instead")
    if not stream:
        return _load(args.data, rate, args.trim_silence, out), False
    if args.trim_silence:
        files = files.trim_silence()
    if files.multi_label:
        raise ValueError(
            f"{args.data} is multi-label; speechmix train trains single-label "
            "classifiers (softmax). Stream it with keras_speechmix.audio.streaming into a "
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
    return files, True


def _note_padding(seconds, length, train):
    """Says when --clip-seconds is longer than every training clip: each is
    then zero-padded, and the network learns mostly silence."""
    longest = max(len(wave) for wave in train.waveforms)
    if length > longest:
        print(f"Note: --clip-seconds {seconds:g} is longer than every training clip "
              f"(the longest is {longest / train.sample_rate:.3g} s): each is "
              f"zero-padded to {seconds:g} s; leave --clip-seconds out for the longest "
              "clip's length")


def _save_run(args, model, result, out):
    """Writes model.keras (with its metadata), metrics.json and the plots."""
    from keras_speechmix.cli import plots
    from keras_speechmix.models import saved

    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.keras"
    saved.save_model(model, model_path, sample_rate=result["sample_rate"],
                     class_names=result["class_names"], input_length=result["input_length"],
                     network=args.model, mix=args.mix, epochs=result["epochs"],
                     trim_silence=args.trim_silence)
    (out / "metrics.json").write_text(json.dumps(result, indent=2, default=str))
    plots.plot_curves([result], out / "curves.png")
    plots.plot_confusion([result], out / "confusion.png")
    return model_path


def _print_run(args, result, model_path, skipped):
    print(f"\n{args.model}, {args.mix}, {_plural(result['epochs'], 'epoch')}, "
          f"{result['seconds']:.0f} s of training:")
    print(f"  training clips (inference mode): {_percent(result['train_accuracy'])}: "
          f"{_fit_verdict(result['train_accuracy'])}")
    if "validation_accuracy" in result:
        print(f"  validation ({_plural(result['num_validation'], 'clip')} held out of the "
              f"training data): {_percent(result['validation_accuracy'])}")
    print(f"  test ({_plural(result['num_test'], 'clip')}, scored once): "
          f"{_percent(result['test_accuracy'])}")
    if "test_ece" in result:
        fitted = (f"temperature {result['temperature']:.2f} fitted on the validation clips"
                  if result.get("temperature", 1.0) != 1.0 else "no temperature fitted")
        print(f"  calibration: ECE {100 * result['test_ece']:.1f} %, NLL "
              f"{result['test_nll']:.3f} ({fitted})")
    shifted = {k: v for k, v in result.get("shifts", {}).items() if k != "clean"}
    if shifted:
        print("  test error under recording shifts (metrics.json has each clip): "
              + ", ".join(f"{name} {100 * score['error']:.1f} %"
                          for name, score in shifted.items()))
    print(f"Wrote {model_path}, metrics.json, curves.png, confusion.png"
          + (", skipped.csv" if skipped else ""))
    print(_usage(model_path, result))


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
