#!/usr/bin/env bash
# The test suite, from nothing: venv, pinned stack, pytest on the TensorFlow
# backend, then the backend-neutral core again on JAX.
EXTRAS=audio,dev
source "$(dirname "$0")/env.sh"
python -m pytest -q -p no:cacheprovider "$@" tests
KERAS_BACKEND=jax python -m pytest -q -p no:cacheprovider "$@" \
  tests/test_layer.py tests/test_view.py tests/test_reliability.py \
  tests/test_features_beyond.py tests/test_training.py tests/test_pydataset.py
