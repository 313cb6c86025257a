"""The command line: options, their checks and help text."""

import argparse
import os

from keras_speechmix.audio.shifts import SHIFTS, parse_shift
from keras_speechmix.cli.demo import DEMO, _demo_epochs



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


# The lowest rate the reference networks can use: below about 3 kHz some of
# the log-mel networks' 64 mel bands (20 Hz to half the rate) get no FFT bin
# and carry nothing; 4 kHz (speech up to 2 kHz) leaves every band filled.
# The highest is the highest rate audio files commonly have.
MIN_RATE, MAX_RATE = 4000, 384000


def _shift(text):
    """An argparse type: a recording shift name (`audio.shifts`), or 'all'."""
    if text == "all":
        return text
    try:
        parse_shift(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _rate(text):
    """An argparse type: a sample rate in Hz the networks can use."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not MIN_RATE <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(
            f"must be a sample rate in Hz from {MIN_RATE} to {MAX_RATE} (below "
            f"{MIN_RATE} Hz some of the log-mel networks' mel bands get no FFT bin "
            f"and carry nothing); received {text!r}")
    return value


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
    parser = argparse.ArgumentParser(
        prog="speechmix",
        description="Train and compare sound classifiers with SpeechMix (mixing of "
                    "hidden activations). Run `speechmix COMMAND --help` for the "
                    "options of each command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_demo(commands)
    train = _add_train(commands)
    _add_train_input(train)
    _add_evaluate(commands)
    _add_predict(commands)
    return parser


def _add_demo(commands):
    from keras_speechmix.training.experiment import MIXES, RECIPE

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


def _add_train(commands):
    """`train` and its recipe options; `_add_train_input` adds the rest."""
    from keras_speechmix.training.experiment import METHODS, MIXES, NETWORKS, RECIPE

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
    return train


def _add_train_input(train):
    """`train`'s options on reading the data, backups and output."""
    from keras_speechmix.training.experiment import NETWORKS, RECIPE

    train.add_argument("--sample-rate", type=_rate, default=None, metavar="HZ",
                       help=f"resample every file to this rate, {MIN_RATE} to {MAX_RATE} "
                            "(default: the network's, "
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


_MODEL_RATE_HELP = ("only for a model that records no rate and has no feature layer "
                    "that gives one (LogMelSpectrogram, keras.layers.MelSpectrogram): "
                    "the rate it takes (default: the rate saved in the model, else "
                    "its feature layer's)")


_NO_TEMPERATURE_HELP = (
    "report the network's own probabilities, without the temperature `speechmix train` "
    "fitted on its validation clips (the default applies it, so probabilities read as "
    "confidences)")


def _add_evaluate(commands):
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
    evaluate.add_argument("--sample-rate", type=_rate, default=None, metavar="HZ",
                          help=_MODEL_RATE_HELP)
    evaluate.add_argument("--trim-silence", action=argparse.BooleanOptionalAction,
                          default=None,
                          help="cut leading/trailing digital silence (default: as the "
                               "model was trained, from its saved metadata)")
    evaluate.add_argument("--stream", action="store_true",
                          help="read the files as scoring goes (for large sets)")
    evaluate.add_argument("--json", action="store_true", help="print JSON only")
    evaluate.add_argument("--no-temperature", dest="temperature", action="store_false",
                          help=_NO_TEMPERATURE_HELP)
    evaluate.add_argument(
        "--shift", nargs="+", type=_shift, default=None, metavar="SHIFT",
        help="also score the clips under recording shifts, applied at scoring time "
             "(seeded): 'level:DB' (a gain; louder clips clipped at full scale), "
             "'white:SNR', 'pink:SNR' (noise SNR in dB), 'background:SNR' (other clips "
             "of the set of other classes), or 'all' for " + " ".join(SHIFTS[1:])
             + "; each is compared with the clean clips clip by clip (McNemar), and "
             "the errors are drawn in --picture")
    evaluate.add_argument("--shift-seed", type=_whole(0), default=0, metavar="N",
                          help="seed of the noise and background draws (default "
                               "%(default)s)")
    evaluate.add_argument("--picture", default="robustness.png", metavar="PNG",
                          help="with --shift: where to draw error against level and "
                               "SNR (default %(default)s)")


def _add_predict(commands):
    predict = commands.add_parser(
        "predict", help="the most likely classes of audio files of any length",
        description="Print the most likely classes of each audio file, by a model "
                    "saved by `speechmix train` (files are resampled to the model's "
                    "rate; files longer than its input are scored on evenly spaced "
                    "windows), in the order given. Exit status: 0 when every file "
                    "was scored, 1 when some could not be read (those are listed "
                    "on stderr, the others scored), 2 when none could be or on "
                    "any other error.")
    predict.add_argument("model", help="a .keras file written by `speechmix train`")
    predict.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    predict.add_argument("--top", type=_whole(1), default=1,
                         help="classes to print per file (default %(default)s)")
    predict.add_argument("--sample-rate", type=_rate, default=None, metavar="HZ",
                         help=_MODEL_RATE_HELP)
    predict.add_argument("--no-temperature", dest="temperature", action="store_false",
                         help=_NO_TEMPERATURE_HELP)
    predict.add_argument("--json", action="store_true",
                         help="print JSON only: 'predictions' and 'skipped_files', each "
                              "in the order the files were given")


def _default_budget_gb():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 / 1e9
    except (ValueError, OSError, AttributeError):
        return 8.0
