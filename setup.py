"""keras_speechmix: SpeechMix (hidden-space mixup for sound) for Keras 3."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def read_version():
    """keras_speechmix.__version__, read from keras_speechmix/_version.py as
    text: importing the package would import Keras and TensorFlow."""
    text = (HERE / "keras_speechmix" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if match is None:
        raise RuntimeError("keras_speechmix/_version.py has no __version__ line")
    return match.group(1)


# The documentation site (mkdocs.yml at the top of the repository).
DOCS = ["mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"]

setup(
    name="keras_speechmix",
    version=read_version(),
    description="SpeechMix: mixup of hidden activations for sound and speech classifiers, for Keras 3.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
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
        "docs": DOCS,
        "dev": ["pytest>=8", "hypothesis>=6", "jax[cpu]>=0.4.30", "scipy", "grain>=0.2.18",
                # keras_speechmix.audio.synth: eSpeak NG digits, tests' and benchmarks' data.
                "espeakng-loader>=0.2",
                # examples/finetune_backbone.py --backbone whisper and its test
                # (KerasHub's audio encoders, built from a config: no download).
                "keras-hub>=0.32",
                # tests/test_packaging.py builds the sdist and wheel without
                # build isolation (no network) and checks them with twine;
                # setuptools 70.1 and later build wheels without `wheel`.
                "build>=1.2", "twine>=5", "setuptools>=70.1",
                *DOCS],
    },
    entry_points={"console_scripts": ["speechmix=keras_speechmix.cli:main"]},
    # The code is Apache-2.0 (LICENSE); the built-in FSDD digits
    # (keras_speechmix/audio/data/fsdd_digits.npz) are CC BY-SA 4.0, with
    # their licence and credits beside them, in the wheel and the sdist.
    license="Apache-2.0",
    license_files=["LICENSE", "keras_speechmix/audio/data/FSDD_LICENSE.txt",
                   "keras_speechmix/audio/data/FSDD_ATTRIBUTION.txt"],
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Science/Research",
        "Intended Audience :: Developers",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    keywords=["keras", "mixup", "data augmentation", "audio classification",
              "speech", "sound"],
)
