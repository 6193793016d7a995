#!/usr/bin/env bash
# Run the test suite: install the venv (first run only), then pytest.
# Extra arguments go to pytest (e.g. -k codec, -m "not slow").
# STACK=torch21 runs it on the second supported stack (see tools/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
STACK="${STACK:-default}"
case "$STACK" in
  torch21) export VENV="${VENV:-.venv-torch21}" ;;
  *) export VENV="${VENV:-.venv}" ;;
esac
STACK="$STACK" bash tools/install.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec "$VENV/bin/python" -m pytest -ra --durations=15 "$@"
