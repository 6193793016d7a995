#!/usr/bin/env bash
# Quick start: install into .venv (first run only), then train a small
# HigherHRNet for a few minutes, evaluate it with CocoMetric on held-out images
# and draw a prediction and the learning curve into work_dirs/quickstart/.
# Prints the set-up time and the total time (set-up included) at the end.
# Extra arguments go to tools/quickstart.py (e.g. --data synthetic, --verbose).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash tools/install.sh
setup=$((SECONDS - start))
echo "[quickstart] set-up (tools/install.sh): ${setup} s"
.venv/bin/python tools/quickstart.py "$@"
echo "[quickstart] total: $((SECONDS - start)) s (set-up ${setup} s)"
