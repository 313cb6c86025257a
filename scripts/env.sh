# Sourced by the README commands: creates (or reuses) .venv next to this repo
# and installs the package with the tested, pinned stack.
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
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -c "$ROOT/constraints.txt" -e "$ROOT[${EXTRAS}]"
  touch "$STAMP"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
cd "$ROOT"
