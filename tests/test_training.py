"""A real, seconds-long SpeechMix training run: the loss must fall."""

import keras
import numpy as np
import tensorflow as tf

from keras_speechmix import HiddenMixup, SpeechMix, partner_batches
from tests.conftest import SHARED_DATA

LENGTH = 4000  # 0.5 s at 8 kHz


def fsdd_subset():
    """60 FSDD clips (2 speakers x 10 digits x 3 takes), or None if absent."""
    folder = SHARED_DATA / "fsdd" / "recordings"
    if not folder.is_dir():
        return None
    waves, labels = [], []
    for speaker in ("jackson", "theo"):
        for digit in range(10):
            for take in range(3):
                audio, _ = tf.audio.decode_wav(
                    tf.io.read_file(str(folder / f"{digit}_{speaker}_{take}.wav")))
                wave = audio[:LENGTH, 0].numpy()
                waves.append(np.pad(wave, (0, LENGTH - len(wave))))
                labels.append(digit)
    return np.stack(waves), np.array(labels)


def synthetic_tones():
    rng = np.random.RandomState(0)
    t = np.arange(LENGTH) / 8000.0
    labels = np.arange(60) % 10
    waves = [np.sin(2 * np.pi * (200 + 150 * k) * t + rng.rand() * 6) * 0.3
             + 0.05 * rng.randn(LENGTH) for k in labels]
    return np.stack(waves).astype("float32"), labels


def model_for(num_classes):
    return keras.Sequential([
        keras.Input((LENGTH,)),
        keras.layers.MelSpectrogram(fft_length=256, sequence_stride=128,
                                    sampling_rate=8000, num_mel_bins=32),
        keras.layers.Permute((2, 1)),
        HiddenMixup(),
        keras.layers.Conv1D(32, 3, activation="relu"),
        keras.layers.GlobalAveragePooling1D(),
        HiddenMixup(),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


def test_speechmix_training_lowers_the_loss():
    data = fsdd_subset() or synthetic_tones()
    waves, labels = data
    keras.utils.set_random_seed(0)
    model = model_for(10)
    view = SpeechMix(model)
    view.compile(optimizer=keras.optimizers.Adam(3e-3), loss="categorical_crossentropy")
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before, _ = model.evaluate(waves, labels, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices((waves.astype("float32"), labels))
    train = partner_batches(ds.shuffle(60, seed=0), 12, num_classes=10,
                            mix_points=view.num_mix_points, seed=0)
    view.fit(train, epochs=25, verbose=0)
    after, accuracy = model.evaluate(waves, labels, verbose=0)
    assert after < 0.6 * before, (before, after)
    assert accuracy >= 0.4, accuracy  # chance is 0.1
