#!/usr/bin/env bash
# Create (or reuse) .venv and install the plugin with the pinned MMPose 1.3.2 stack.
# Idempotent: a second run only checks that everything is present.
# Usage: bash tools/install.sh            (VENV=path to choose another location)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
C=requirements/constraints.txt
stamp="$VENV/.installed-$(cat "$C" requirements/*.txt pyproject.toml | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then exit 0; fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
echo "[install] torch (CPU) and the MMPose stack into $VENV (a few minutes on first run)"
pip install -q -c "$C" "setuptools" wheel
pip install -q -c "$C" torch
pip install -q -c "$C" -r requirements/runtime.txt
# torchvision and MMPose are installed without their declared dependencies:
#   torchvision's wheel depends on the CUDA torch build; MMPose declares chumpy, which does not
#   build on Python 3.11 and is never imported. Their real dependencies are in runtime.txt.
pip install -q -c "$C" --no-deps torchvision mmpose
pip install -q -c "$C" --no-deps -e .
"$VENV/bin/python" -c "import higherhrnet_plugin, mmpose.models; print('[install] ok: mmpose', __import__('mmpose').__version__)"
rm -f "$VENV"/.installed-*; touch "$stamp"
