"""The `speechmix` command: `demo`, `train`, `evaluate` and `predict`.

Example:

    speechmix demo --out speechmix-out
    speechmix train --data fsdd:../shared/data/fsdd --mix speechmix --out run1
    speechmix evaluate run1/model.keras --data fsdd:../shared/data/fsdd
"""

import argparse
import logging
import os
import sys
import warnings

from keras_speechmix.cli.demo import run_demo
from keras_speechmix.cli.evaluate import run_evaluate
from keras_speechmix.cli.options import _parser
from keras_speechmix.cli.predict import NotAllScored, run_predict
from keras_speechmix.cli.report import _QuietSkipWarning
from keras_speechmix.cli.train import run_train

__all__ = ["main"]


def main(argv=None):
    """Entry point of the `speechmix` console script.

    Example:

    >>> # main(["demo", "--out", "speechmix-out"])
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        from keras_speechmix.training import multiworker

        # Before anything else runs a TensorFlow op: collectives are set up
        # first or never.
        early = argparse.ArgumentParser(add_help=False)
        early.add_argument("--collective-timeout", type=float, default=120.0)
        multiworker.strategy_from_env(early.parse_known_args(argv[1:])[0].collective_timeout)
    args = _parser().parse_args(argv)
    import tensorflow as tf

    # Scoped to this call: main() also runs inside other programs (and the
    # tests), whose logging must not stay changed afterwards.
    quiet, datasets_logger = _QuietSkipWarning(), logging.getLogger("keras_speechmix.audio.datasets")
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
    except NotAllScored as error:  # a partial answer, already printed
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
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
