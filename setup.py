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
    package_data={"keras_speechmix": ["data/*.npz", "data/*.txt"]},
    install_requires=["tensorflow>=2.16", "keras>=3.5", "numpy"],
    extras_require={
        "audio": ["tensorflow-io>=0.37", "matplotlib>=3.7"],
        "dev": ["pytest>=8", "hypothesis>=6", "jax[cpu]>=0.4.30", "scipy",
                # keras_speechmix.synth: eSpeak NG digits, tests' and benchmarks' data.
                "espeakng-loader>=0.2"],
    },
    entry_points={"console_scripts": ["speechmix=keras_speechmix.cli:main"]},
    license="Apache-2.0",
)
