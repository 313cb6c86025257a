"""Quickstart: train a small classifier with SpeechMix on random data.

Run: python examples/quickstart.py
"""

import keras
import numpy as np
import tensorflow as tf

import keras_speechmix as ksm

model = keras.Sequential([
    keras.Input((16000,)),                       # 1 s of 16 kHz audio
    keras.layers.MelSpectrogram(sampling_rate=16000, num_mel_bins=40),
    keras.layers.Permute((2, 1)),                # (frames, mels)
    ksm.HiddenMixup(),                           # mixing point 0: input features
    keras.layers.Conv1D(32, 3, activation="relu"),
    ksm.HiddenMixup(),                           # mixing point 1: hidden
    keras.layers.GlobalAveragePooling1D(),
    keras.layers.Dense(10, activation="softmax"),
])
view = ksm.SpeechMix(model)                      # training view, shared weights
view.compile(optimizer="adam", loss="categorical_crossentropy")

waves = np.random.randn(64, 16000).astype("float32") * 0.1
labels = np.arange(64) % 10
train = ksm.partner_batches(
    tf.data.Dataset.from_tensor_slices((waves, labels)).shuffle(64),
    batch_size=16, num_classes=10, mix_points=view.num_mix_points, seed=0)
view.fit(train, epochs=2)
print(model.predict(waves[:2]).argmax(axis=1))  # the plain model: no mixing
