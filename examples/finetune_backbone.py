"""Fine-tune a keras.applications backbone on log-mels with SpeechMix points.

The classifier is built the usual way, with no SpeechMix in its code: a
waveform input, `keras.layers.MelSpectrogram`, the log-mel image fed to a
`keras.applications` backbone (`include_top=False`), a dense head. Then one
call, `keras_speechmix.add_mix_points`, returns the same network with mixing
points at the log-mel input and after the backbone's stages (found from its
structure, inside the nested backbone), sharing every weight with the
original. Training the SpeechMix view on partner batches trains the original
model, which is evaluated and saved as it was.

    python examples/finetune_backbone.py                       # ESC-10 if present
    python examples/finetune_backbone.py --data digits --backbone EfficientNetB0
    python examples/finetune_backbone.py --weights imagenet    # needs a network

Data (`--data`): `esc10` reads ESC-10 folds 1-3 from ../shared/data (train on
folds 1-2, test on fold 3; silence trimmed, 1 s crops at 16 kHz); `digits`
the package's built-in FSDD spoken digits (5 speakers train, yweweler is
the test); `tones` a synthetic set; `auto` (default) ESC-10 when it is
there, else the digits.

`--backbone whisper` takes an audio encoder from KerasHub instead: the
encoder half of `keras_hub.models.WhisperBackbone` (whisper-tiny's shape,
random weights; `WhisperBackbone.from_preset("whisper_tiny_en")` gives the
pretrained one where the network allows, fed Whisper's own log-mel scale).
`add_mix_points(after="auto")` finds its four transformer layers as blocks.
KerasHub 0.32 is part of the dev stack (`.[dev]`, pinned in
constraints.txt), so the tests run this path; a user installs it with
`pip install keras-hub` beside TensorFlow 2.21 (it needs tensorflow-text,
which needs TensorFlow >= 2.20).

`--weights` defaults to `none` (random initialisation: no download, and what
the tests run). With a network, `--weights imagenet` starts from the
ImageNet weights Keras downloads; the log-mels are scaled to the 0-255 pixel
range the backbones' own preprocessing expects, and three copies of the
log-mel make the three colour channels.
"""

import argparse
import json
from pathlib import Path

import keras
import numpy as np

import keras_speechmix as ksm
from keras_speechmix.audio import datasets

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE_RATE = 16000
MELS = 64


def tone_clips(per_class=12, classes=5, seconds=1.5, seed=0):
    """A synthetic set: class k is a harmonic tone near 300 * 1.5^k Hz in noise."""
    rng = np.random.default_rng(seed)
    waves, labels = [], []
    for label in range(classes):
        for _ in range(per_class):
            n = int(SAMPLE_RATE * seconds * rng.uniform(0.7, 1.0))
            t = np.arange(n) / SAMPLE_RATE
            f0 = 300 * 1.5 ** label * rng.uniform(0.95, 1.05)
            wave = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3))
            wave = wave * np.hanning(n) + 0.3 * rng.normal(size=n)
            waves.append((0.1 * wave).astype("float32"))
            labels.append(label)
    clips = datasets.ClipSet(waves, labels, [f"tone{k}" for k in range(classes)],
                             SAMPLE_RATE)
    return datasets.stratified_split(clips, 0.25, seed=seed)


def digit_clips(test_speaker="yweweler"):
    """The package's built-in FSDD digits at 16 kHz; one speaker held out."""
    from keras_speechmix import audio

    clips = datasets.builtin_digits()
    clips = datasets.ClipSet(
        [np.asarray(audio.resample(w, clips.sample_rate, SAMPLE_RATE)) for w in clips.waveforms],
        clips.labels, clips.class_names, SAMPLE_RATE, groups=clips.groups)
    return datasets.split_by_group(clips, [test_speaker])


def esc10_clips(root):
    clips = datasets.from_csv(root / "esc10" / "meta.csv", sample_rate=SAMPLE_RATE)
    return datasets.split_by_fold(clips.trim_silence(), test_folds=[3], train_folds=[1, 2])


def load(data, data_root):
    if data == "auto":
        data = "esc10" if (data_root / "esc10" / "meta.csv").is_file() else "digits"
    loaders = {"esc10": lambda: esc10_clips(data_root), "digits": digit_clips,
               "tones": tone_clips}
    train, test = loaders[data]()
    return data, train, test


def whisper_encoder(num_mels):
    """KerasHub's Whisper audio encoder (whisper-tiny's shape, random weights).

    The encoder half of `keras_hub.models.WhisperBackbone` as a functional
    model: two convolutions, then transformer layers (`WhisperEncoder`
    layers, each a block that holds its own layers). The decoder is not
    used, so its vocabulary is kept tiny.
    """
    import keras_hub

    backbone = keras_hub.models.WhisperBackbone(
        vocabulary_size=64, num_layers=4, num_heads=6, hidden_dim=384,
        intermediate_dim=1536, num_mels=num_mels, max_encoder_sequence_length=3000,
        max_decoder_sequence_length=16)
    return keras.Model(backbone.input["encoder_features"],
                       backbone.get_layer("encoder_layer_norm").output, name="whisper_encoder")


def build_classifier(num_classes, length, backbone="MobileNetV3Small", weights=None,
                     logmel_mean=0.0, logmel_variance=1.0):
    """An ordinary Keras classifier: waveform -> log-mel image -> backbone -> head.

    `backbone="whisper"` takes KerasHub's Whisper encoder instead of an image
    network, on the log-mel frames (B, frames, mels).
    """
    waveform = keras.Input((length,), name="waveform")
    logmel = keras.layers.MelSpectrogram(
        sampling_rate=SAMPLE_RATE, num_mel_bins=MELS, fft_length=512,
        sequence_stride=SAMPLE_RATE // 100, name="logmel")(waveform)  # (B, mels, frames), dB
    h = keras.layers.Normalization(axis=None, mean=logmel_mean, variance=logmel_variance,
                                   name="logmel_norm")(logmel)
    if backbone == "whisper":
        if weights is not None:
            raise ValueError("--backbone whisper is built with random weights here; for "
                             "pretrained ones use WhisperBackbone.from_preset (see the top).")
        h = keras.layers.Permute((2, 1), name="frames_first")(h)
        h = whisper_encoder(MELS)(h)
        h = keras.layers.GlobalAveragePooling1D(name="pool_frames")(h)
        outputs = keras.layers.Dense(num_classes, name="logits")(h)
        return keras.Model(waveform, outputs, name="whisper_logmel")
    # +-3 standard deviations -> 0..255, the pixel range the backbone's own
    # preprocessing (and its ImageNet weights) expect.
    h = keras.layers.Rescaling(255 / 6, offset=127.5, name="to_pixels")(h)
    frames = h.shape[2]
    h = keras.layers.Reshape((MELS, frames, 1), name="image")(h)
    h = keras.layers.Concatenate(name="to_rgb")([h, h, h])
    net = getattr(keras.applications, backbone)(
        include_top=False, weights=weights, input_shape=(MELS, frames, 3), pooling="avg")
    if weights is None:
        # From scratch, a few hundred steps leave batch-norm moving averages
        # with momentum 0.999 (MobileNetV3's) near their initial values, and
        # the trained network then predicts one class at inference.
        for layer in net.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = min(layer.momentum, 0.9)
    h = net(h)
    h = keras.layers.Dropout(0.2, name="head_dropout")(h)
    outputs = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(waveform, outputs, name=f"{backbone.lower()}_logmel")


def logmel_statistics(train, length):
    """Mean and variance of the training clips' log-mels (centre crops)."""
    waves = np.stack([w for w, _ in train.to_dataset(length).as_numpy_iterator()])
    logmel = keras.layers.MelSpectrogram(sampling_rate=SAMPLE_RATE, num_mel_bins=MELS,
                                         fft_length=512, sequence_stride=SAMPLE_RATE // 100)
    values = keras.ops.convert_to_numpy(logmel(waves))
    return float(values.mean()), float(values.var())


def main(data="auto", backbone="MobileNetV3Small", weights="none", epochs=30, batch_size=16,
         after=("logmel_norm", "auto"), seconds=1.0, tiny=False, data_root=SHARED_DATA,
         out=None, seed=0, verbose=2):
    keras.utils.set_random_seed(seed)
    data, train, test = load(data, Path(data_root))
    if tiny:  # a smoke run: two training clips a class, one epoch
        keep = np.concatenate([np.flatnonzero(train.labels == k)[:2]
                               for k in range(train.num_classes)])
        train, epochs, batch_size = train.subset(keep), 1, 4
    length = int(seconds * SAMPLE_RATE)
    print(f"data: {data}, {len(train)} training clips, {len(test)} test clips, "
          f"{train.num_classes} classes")

    mean, variance = logmel_statistics(train, length)
    model = build_classifier(train.num_classes, length, backbone,
                             None if weights == "none" else weights, mean, variance)
    # The one SpeechMix call: points at the log-mel input and after each of
    # the backbone's stages; the new model shares every weight with `model`.
    mixing = ksm.add_mix_points(model, after=list(after))
    points = [layer.name for layer in ksm.mix_layers(mixing)]
    print(f"mixing points ({len(points)}): {', '.join(points)}")

    view = ksm.SpeechMix(mixing)
    view.compile(optimizer=keras.optimizers.Adam(1e-3 if weights == "none" else 3e-4),
                 loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                 metrics=["accuracy"])
    batches = ksm.partner_batches(
        train.to_dataset(length, training=True, seed=seed).shuffle(len(train), seed=seed),
        batch_size, num_classes=train.num_classes, mix_points=view.num_mix_points,
        partners="different_class", seed=seed)
    view.fit(batches, epochs=epochs, verbose=verbose)

    # The original model, trained through the view, is what gets deployed.
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    _, accuracy = model.evaluate(test.to_dataset(length).batch(32), verbose=0)
    print(f"test accuracy of the fine-tuned {backbone} ({data}, {len(test)} clips, "
          f"1 centre crop each): {100 * accuracy:.1f} %")
    result = {"data": data, "backbone": backbone, "weights": weights, "epochs": epochs,
              "mix_points": points, "num_train": len(train), "num_test": len(test),
              "test_accuracy": float(accuracy)}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model.save(out / "model.keras")  # plain Keras: no HiddenMixup inside
        (out / "result.json").write_text(json.dumps(result, indent=2))
        print(f"saved {out / 'model.keras'}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["auto", "esc10", "digits", "tones"], default="auto")
    parser.add_argument("--data-root", type=Path, default=SHARED_DATA,
                        help="folder holding esc10/meta.csv (default ../shared/data)")
    parser.add_argument("--backbone", default="MobileNetV3Small",
                        help="a keras.applications model, e.g. EfficientNetB0, or "
                             "'whisper' (KerasHub's Whisper encoder; needs keras-hub)")
    parser.add_argument("--weights", choices=["none", "imagenet"], default="none",
                        help="imagenet downloads Keras' ImageNet weights (network needed)")
    parser.add_argument("--after", nargs="+", default=["logmel_norm", "auto"],
                        help="layer names, 'auto' (stage outputs) or 'blocks'")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for model.keras and result.json")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args()
    main(args.data, args.backbone, args.weights, args.epochs, args.batch_size,
         tuple(args.after), tiny=args.tiny, data_root=args.data_root, out=args.out,
         seed=args.seed)
