"""keras_speechmix: SpeechMix (hidden-space mixup for sound) for Keras 3."""

from setuptools import find_packages, setup

setup(
    name="keras_speechmix",
    version="0.1.0",
    description="SpeechMix: mixup of hidden activations for sound and speech classifiers, for Keras 3.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_speechmix", "keras_speechmix.*"]),
    # The built-in spoken digits (FSDD subset) with their licence and credits.
    package_data={"keras_speechmix.audio": ["data/*.npz", "data/*.txt"]},
    # Lower bounds: the oldest versions tested. The whole suite passes with
    # constraints.txt (TensorFlow 2.21); it passed with TensorFlow 2.17.1 and
    # numpy 1.26.4 before the move, and the audio, dataset and streaming
    # tests pass there with soundfile 0.12.1 and soxr 0.3.7. Keras: only
    # 3.15.1 has been tried.
    # TensorFlow 2.21 no longer brings TensorBoard, which MixLogger writes to.
    install_requires=["tensorflow>=2.17", "keras>=3.15", "numpy>=1.26",
                      "soundfile>=0.12.1", "soxr>=0.3.7", "tensorboard>=2.17"],
    extras_require={
        # The plots (speechmix demo / train).
        "audio": ["matplotlib>=3.7"],
        # Not used by the package (audio.tensorflow_io() checks a copy you
        # use yourself); tensorflow-io 0.37 loads beside TensorFlow 2.17 only.
        "tfio": ["tensorflow-io>=0.37.1", "tensorflow>=2.17,<2.18"],
        "dev": ["pytest>=8", "hypothesis>=6", "jax[cpu]>=0.4.30", "scipy", "grain>=0.2.18",
                # keras_speechmix.audio.synth: eSpeak NG digits, tests' and benchmarks' data.
                "espeakng-loader>=0.2"],
    },
    entry_points={"console_scripts": ["speechmix=keras_speechmix.cli:main"]},
    license="Apache-2.0",
)
