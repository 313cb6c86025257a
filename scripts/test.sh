#!/usr/bin/env bash
# The test suite, from nothing: venv, pinned stack, pytest.
EXTRAS=audio,dev
source "$(dirname "$0")/env.sh"
exec python -m pytest -q "$@" tests
