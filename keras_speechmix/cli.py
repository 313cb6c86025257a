"""The `speechmix` command: `demo`, `train` and `evaluate`.

Example:

    speechmix demo --out speechmix-out
    speechmix train --data fsdd:../shared/data/fsdd --mix speechmix --out run1
    speechmix evaluate run1/model.keras --data fsdd:../shared/data/fsdd
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _folds(text):
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"folds must be comma-separated integers such as 1,2,3; received {text!r}")


def _parser():
    parser = argparse.ArgumentParser(
        prog="speechmix",
        description="Train and compare sound classifiers with SpeechMix.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="train no mixing, input mixup and SpeechMix on the "
        "built-in synthesised spoken digits and compare them")
    demo.add_argument("--out", default="speechmix-out", help="output folder")
    demo.add_argument("--epochs", type=int, default=40)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--speakers", type=int, default=12,
                      help="synthetic speakers (a quarter are held out for testing)")
    demo.add_argument("--takes", type=int, default=5, help="takes per digit and speaker")
    demo.add_argument("--data", default=None,
                      help="use this dataset SPEC instead of the synthesised digits")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")

    train = commands.add_parser("train", help="train one model and save it")
    train.add_argument("--data", required=True,
                       help="a folder (one subfolder per class), a CSV "
                       "(path,label[,fold]) or fsdd:DIR")
    train.add_argument("--mix", default="speechmix",
                       choices=("none", "input", "bc", "speechmix"))
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument("--train-folds", type=_folds, default=None)
    train.add_argument("--test-folds", type=_folds, default=None)
    train.add_argument("--sample-rate", type=int, default=16000)
    train.add_argument("--clip-seconds", type=float, default=None,
                       help="input length (default: longest clip, at most 5 s)")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--trim-silence", action="store_true",
                       help="cut leading/trailing digital silence from every clip "
                            "(as BC learning / SpeechMix prepare ESC-10/50)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")

    evaluate = commands.add_parser("evaluate", help="accuracy and confusion of a saved model")
    evaluate.add_argument("model", help="a .keras file written by `speechmix train`")
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--folds", type=_folds, default=None)
    evaluate.add_argument("--sample-rate", type=int, default=None,
                          help="default: the model's feature layer's rate")
    evaluate.add_argument("--trim-silence", action="store_true",
                          help="cut leading/trailing digital silence (as in training)")
    evaluate.add_argument("--json", action="store_true", help="print JSON only")
    return parser


def _split(clips, spec, train_folds, test_folds, seed):
    from keras_speechmix import datasets

    if test_folds:
        return datasets.split_by_fold(clips, test_folds, train_folds), \
            f"folds {train_folds or 'rest'} / test folds {test_folds}"
    if train_folds:
        raise SystemExit("error: --train-folds needs --test-folds")
    if str(spec).startswith("fsdd:"):
        return datasets.fsdd_official_split(clips), "FSDD official split (takes 0-4 test)"
    return datasets.stratified_split(clips, 0.2, seed=seed), "stratified 80/20 split"


def _held_out_speakers(clips, seed):
    import numpy as np

    from keras_speechmix import datasets

    speakers = sorted(set(clips.groups))
    rng = np.random.RandomState(seed)
    test = sorted(rng.choice(speakers, max(1, len(speakers) // 4), replace=False))
    return datasets.split_by_group(clips, test), test


def _table(results):
    lines = [f"{'method':<10} {'accuracy':>9} {'error':>7} {'epochs':>6} {'time s':>7}"]
    for r in results:
        lines.append(f"{r['mix']:<10} {100 * r['test_accuracy']:>8.1f}% "
                     f"{100 * r['test_error']:>6.1f}% {r['epochs']:>6} {r['seconds']:>7.1f}")
    return "\n".join(lines)


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
    titles = {"mix_input": "input log-mel", "mix_block1": "hidden (block 1, channel mean)"}
    # Channel mean makes a (frames, features) image of any activation.
    return [(titles[n], o[0].mean(axis=-1), o[1].mean(axis=-1))
            for n, o in zip(names, outputs)]


def run_demo(args):
    """`speechmix demo`: compare no mixing, input mixup and SpeechMix."""
    from keras_speechmix import datasets, plots, synth
    from keras_speechmix.experiment import train_clips

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.data:
        clips = datasets.load(args.data, sample_rate=16000)
    else:
        print(f"Synthesising spoken digits ({args.speakers} voices x {args.takes} takes) ...")
        clips = synth.load_default_digits(num_speakers=args.speakers,
                                          takes_per_speaker=args.takes)
    print(clips.summary())
    if clips.groups:
        (train, test), held_out = _held_out_speakers(clips, args.seed)
        split = f"held-out speakers {held_out}"
    else:
        (train, test), split = _split(clips, args.data, None, None, args.seed)
    print(f"Split: {split}: {len(train)} train / {len(test)} test clips")
    results, models = [], {}
    for mix in ("none", "input", "speechmix"):
        print(f"\n== {mix} ==")
        models[mix], result = train_clips(train, test, mix=mix, epochs=args.epochs,
                                          seed=args.seed, verbose=0 if args.quiet else 1)
        results.append(result)
    print("\n" + _table(results))
    summary = {
        "split": split,
        "num_train": len(train),
        "num_test": len(test),
        "seconds_total": round(time.perf_counter() - started, 1),
        "runs": results,
        "load_report": dataclasses.asdict(clips.report),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str))
    plots.plot_curves(results, out / "curves.png")
    plots.plot_confusion(results, out / "confusion.png")
    plots.plot_mixing(_mixing_panels(models["speechmix"], test), out / "mixing.png")
    print(f"\nWrote {out / 'results.json'}, curves.png, confusion.png, mixing.png "
          f"({summary['seconds_total']} s in all)")
    return summary


def run_train(args):
    """`speechmix train`: one method on one dataset; saves model and metrics."""
    from keras_speechmix import datasets
    from keras_speechmix.experiment import train_clips

    clips = datasets.load(args.data, sample_rate=args.sample_rate)
    if args.trim_silence:
        clips = clips.trim_silence()
    print(clips.summary())
    (train, test), split = _split(clips, args.data, args.train_folds, args.test_folds,
                                  args.seed)
    print(f"Split: {split}: {len(train)} train / {len(test)} test clips")
    length = None if args.clip_seconds is None else int(args.clip_seconds * args.sample_rate)
    model, result = train_clips(train, test, mix=args.mix, epochs=args.epochs,
                                seed=args.seed, length=length,
                                batch_size=args.batch_size,
                                verbose=0 if args.quiet else 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    result["split"] = split
    result["trim_silence"] = args.trim_silence
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    print(f"test accuracy {100 * result['test_accuracy']:.1f} % "
          f"({result['num_test']} clips); wrote {out / 'model.keras'} and metrics.json")
    return result


def _model_rate(model):
    for layer in model._flatten_layers(include_self=False, recursive=True):
        rate = getattr(layer, "sample_rate", None)
        if isinstance(rate, int):
            return rate
    return None


def run_evaluate(args):
    """`speechmix evaluate`: accuracy and confusion matrix of a saved model."""
    import keras
    import numpy as np

    from keras_speechmix import datasets
    from keras_speechmix.experiment import predict_clips

    if not Path(args.model).is_file():
        raise SystemExit(f"error: model file {args.model} does not exist")
    model = keras.models.load_model(args.model)
    rate = args.sample_rate or _model_rate(model)
    if rate is None:
        raise SystemExit("error: the model has no feature layer with a sample rate: "
                         "pass --sample-rate")
    clips = datasets.load(args.data, sample_rate=rate)
    if args.trim_silence:
        clips = clips.trim_silence()
    if args.folds:
        _, clips = datasets.split_by_fold(clips, args.folds)
    num_classes = model.output_shape[-1]
    if len(clips.class_names) != num_classes:
        raise SystemExit(f"error: the model predicts {num_classes} classes but "
                         f"{args.data} has {len(clips.class_names)}")
    predicted = predict_clips(model, clips.waveforms, model.input_shape[1]).argmax(axis=1)
    confusion = np.zeros((num_classes, num_classes), int)
    np.add.at(confusion, (clips.labels, predicted), 1)
    result = {"accuracy": float(np.mean(predicted == clips.labels)),
              "num_clips": len(clips), "class_names": list(clips.class_names),
              "confusion": confusion.tolist()}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"accuracy {100 * result['accuracy']:.1f} % on {len(clips)} clips")
        width = max(len(n) for n in clips.class_names)
        for name, row in zip(clips.class_names, confusion):
            print(f"{name:>{width}} " + " ".join(f"{v:4d}" for v in row))
    return result


def main(argv=None):
    """Entry point of the `speechmix` console script.

    Example:

    >>> # main(["demo", "--out", "speechmix-out"])
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    import tensorflow as tf

    # Each compared model traces its own predict function; TF's retracing
    # warnings about that are noise in a command's output.
    tf.get_logger().setLevel("ERROR")
    runner = {"demo": run_demo, "train": run_train, "evaluate": run_evaluate}[args.command]
    try:
        runner(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
