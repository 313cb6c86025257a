"""Leave-one-speaker-out on the Free Spoken Digit Dataset: none vs SpeechMix.

    python examples/fsdd_speaker_holdout.py PATH/TO/fsdd --low-data 5

FSDD's official split (takes 0-4 of every speaker as test) is too easy to
separate methods (about 99 %); holding a whole speaker out is not. Each
speaker is the test set once; the table gives the accuracy per speaker.
Training follows the package's default recipe (`experiment.RECIPE`: plain
training 100 epochs, SpeechMix twice that without dropout) unless --epochs
is given; `benchmarks/accuracy.py --fsdd` is the same comparison over 3
seeds with 5 takes per digit and speaker.
"""

import argparse

import numpy as np

from keras_speechmix.audio import datasets
from keras_speechmix.training.experiment import train_clips


def main(root, epochs=None, speakers=None, mixes=("none", "speechmix"), verbose=0,
         per_class_per_speaker=None):
    clips = datasets.fsdd(root, sample_rate=8000)
    if per_class_per_speaker:
        # Low-data setting: the first N takes of each digit per speaker.
        keep = np.flatnonzero(clips.meta["index"] < per_class_per_speaker)
        clips = clips.subset(keep)
    held_out = speakers or sorted(set(clips.groups))
    table = {mix: [] for mix in mixes}
    for speaker in held_out:
        train, test = datasets.split_by_group(clips, [speaker])
        for mix in mixes:
            _, result = train_clips(train, test, mix=mix, epochs=epochs, verbose=verbose)
            table[mix].append(result["test_accuracy"])
            print(f"{speaker:>10} {mix:>10}: {100 * result['test_accuracy']:.1f} %")
    for mix, accuracies in table.items():
        print(f"{mix:>10}: mean {100 * np.mean(accuracies):.1f} % over {len(accuracies)} speakers")
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="FSDD folder (holding recordings/)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: the recipe's (100, or 200 with SpeechMix)")
    parser.add_argument("--low-data", type=int, default=None,
                        help="use only N takes per digit and speaker")
    args = parser.parse_args()
    main(args.root, args.epochs, per_class_per_speaker=args.low_data)
