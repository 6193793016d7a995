#!/usr/bin/env bash
# Run the test suite: install into .venv (first run only), then pytest.
# Extra arguments go to pytest (e.g. -k codec, -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec .venv/bin/python -m pytest -ra --durations=15 "$@"
