#!/usr/bin/env bash
# Quick start: install into .venv (first run only), then train a tiny
# HigherHRNet briefly, evaluate it (COCO AP) and draw a prediction.
# Extra arguments go to tools/quickstart.py (e.g. --epochs 10).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
exec .venv/bin/python tools/quickstart.py "$@"
