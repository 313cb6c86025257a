"""`speechmix predict`: the most likely classes of audio files, in the order given."""

import json
import sys

from keras_speechmix.cli.evaluate import _model_and_rate
from keras_speechmix.cli.report import _plural


class NotAllScored(Exception):
    """Some files were scored, others could not be read: exit status 1.

    A script that reads the output must be able to tell a partial answer
    from a whole one without parsing it (status 2 stays for "nothing done").

    Example:

    >>> NotAllScored("1 of 3 files could not be read").exit_code
    1
    """

    exit_code = 1


def run_predict(args):
    """`speechmix predict`: the most likely classes of each file, in the order given."""
    from keras_speechmix import audio
    from keras_speechmix.models.saved import predict_clips

    model, info, rate = _model_and_rate(args.model, args.sample_rate, args.temperature)
    names = info.get("class_names") or [str(k) for k in range(model.output_shape[-1])]
    length = info.get("input_length") or model.input_shape[1]
    waves, failed = {}, {}
    for path in args.files:
        try:
            waves[path] = audio.load_audio(path, rate)[0]
        except (audio.AudioDecodeError, OSError) as error:
            failed[path] = str(error).removeprefix(f"{path}: ")
    if not waves:
        for path, reason in failed.items():
            print(f"{path}: not scored: {reason}", file=sys.stderr)
        raise ValueError(f"none of the {_plural(len(args.files), 'file')} could be read")
    probabilities = dict(zip(waves, predict_clips(model, list(waves.values()), length)))
    # Under half the input, most of what the network sees is padding.
    short = {path for path in waves if 2 * len(waves[path]) < length}
    result = {"predictions": {}, "skipped_files": {}, "short_clips": sorted(short)}
    for path in args.files:  # the order given
        if path in failed:
            result["skipped_files"][path] = failed[path]
            continue
        row = probabilities[path]
        best = row.argsort()[::-1][:args.top]
        result["predictions"][path] = [[names[k], float(row[k])] for k in best]
    if args.json:
        print(json.dumps(result))
    else:
        for path in args.files:
            if path in failed:
                print(f"{path}: not scored: {failed[path]}", file=sys.stderr, flush=True)
                continue
            print(f"{path}: " + ", ".join(f"{name} ({100 * p:.1f} %)"
                                          for name, p in result["predictions"][path])
                  + (f" (note: {len(waves[path])} samples, under half the model's input "
                     f"of {length}: scored mostly on zero padding)" if path in short
                     else ""), flush=True)
    if failed:
        raise NotAllScored(f"{len(failed)} of {_plural(len(args.files), 'file')} could not "
                           "be read (not scored: " + ", ".join(failed) + ")")
    return result
