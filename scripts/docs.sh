#!/usr/bin/env bash
# The documentation site, from a fresh clone: site/index.html.
# The build reads the package's source with griffe and never imports it, so
# it needs only the docs stack (pinned in constraints.txt), installed once
# into its own small environment, .venv-docs/, without TensorFlow. The
# install and the build are quiet: their output is shown only if they fail.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV="$ROOT/.venv-docs"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(cksum < "$ROOT/constraints.txt" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ]; then
  LOG="$VENV/install.log"
  echo "Installing the docs stack into .venv-docs (first run only) ..."
  if ! "$VENV/bin/python" -m pip install -q -c "$ROOT/constraints.txt" \
       mkdocs mkdocs-material "mkdocstrings[python]" >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "error: installing the docs stack failed; the pip log is above and in $LOG" >&2
    exit 1
  fi
  touch "$STAMP"
fi
LOG="$VENV/build.log"
# --strict: a broken link or a docstring that does not render fails the build
# (not --quiet: it would hide the warnings that strict mode counts).
if ! NO_MKDOCS_2_WARNING=1 "$VENV/bin/python" -m mkdocs build --strict \
     --site-dir "$ROOT/site" >"$LOG" 2>&1; then
  cat "$LOG" >&2
  echo "error: the docs build failed; its log is above and in $LOG" >&2
  exit 1
fi
echo "Built the docs: site/index.html"
