"""Train on your own folder of clips (one subfolder per class), save the model.

    python examples/train_folder.py PATH/TO/FOLDER --out my-run

Clips are decoded (WAV, FLAC, OGG, MP3), resampled to 16 kHz, split 80/20
stratified, and the default network is trained with SpeechMix and the
default recipe (`experiment.RECIPE`), with progress output. Unreadable files
are skipped and listed. The saved `model.keras` takes raw 16 kHz waveforms
of the printed length and predicts class probabilities. (`speechmix train
--data FOLDER` does the same with a validation split and pictures.)
"""

import argparse
import json
from pathlib import Path

from keras_speechmix.audio import datasets
from keras_speechmix.training.experiment import train_clips


def main(folder, epochs=None, out="speechmix-folder-run", sample_rate=16000, verbose=2):
    clips = datasets.from_folder(folder, sample_rate=sample_rate)
    print(clips.summary())
    for path, reason in clips.report.skipped:
        print(f"skipped {path}: {reason}")
    train, test = datasets.stratified_split(clips, test_fraction=0.2, seed=0)
    model, result = train_clips(train, test, mix="speechmix", epochs=epochs,
                                verbose=verbose)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    print(f"test accuracy {100 * result['test_accuracy']:.1f} % on {len(test)} clips; "
          f"input length {result['input_length']} samples; saved {out / 'model.keras'}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: the recipe's (200 with SpeechMix)")
    parser.add_argument("--out", default="speechmix-folder-run")
    args = parser.parse_args()
    main(args.folder, args.epochs, args.out)
