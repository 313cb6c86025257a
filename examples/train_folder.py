"""Train on your own folder of clips (one subfolder per class), save the model.

    python examples/train_folder.py PATH/TO/FOLDER --epochs 40 --out my-run

Clips are decoded (WAV, FLAC, OGG, MP3), resampled to 16 kHz, split 80/20
stratified, and a log-mel CNN is trained with SpeechMix, with progress bars.
Unreadable files are skipped and listed. The saved `model.keras` takes raw
16 kHz waveforms of the printed length and predicts class probabilities.
"""

import argparse
import json
from pathlib import Path

from keras_speechmix import datasets
from keras_speechmix.experiment import train_clips


def main(folder, epochs=40, out="speechmix-folder-run", sample_rate=16000, verbose=1):
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
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", default="speechmix-folder-run")
    args = parser.parse_args()
    main(args.folder, args.epochs, args.out)
