# Sourced by the README commands: creates (or reuses) .venv next to this repo
# and installs the package with the tested, pinned stack. The install is
# quiet: its log goes to .venv/install.log and is shown only if it fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$PYTHON" -m venv "$ROOT/.venv"
fi
# shellcheck disable=SC1091
source "$ROOT/.venv/bin/activate"
STAMP="$ROOT/.venv/.installed-$(cat "$ROOT/setup.py" "$ROOT/constraints.txt" | cksum | cut -d' ' -f1)-${EXTRAS}"
if [ ! -f "$STAMP" ]; then
  LOG="$ROOT/.venv/install.log"
  echo "Installing keras_speechmix and its pinned stack into .venv (first run only; a few minutes) ..."
  if ! { python -m pip install --upgrade pip &&
         python -m pip install -c "$ROOT/constraints.txt" -e "$ROOT[${EXTRAS}]"; } >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "error: installing the package failed; the pip log is above and in $LOG" >&2
    exit 1
  fi
  touch "$STAMP"
fi
# TensorFlow's C++ start-up lines (oneDNN notice, CUDA plugin registration)
# are noise for a newcomer; Python errors still show.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
cd "$ROOT"
