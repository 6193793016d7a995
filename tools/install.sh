#!/usr/bin/env bash
# Create (or reuse) a venv and install the plugin with a pinned MMPose 1.3.2 stack.
# Idempotent: a second run only checks that everything is present.
#
# Usage: bash tools/install.sh                 the README's stack in .venv: CPU torch 2.13,
#                                              mmcv-lite (requirements/constraints.txt)
#        STACK=torch21 bash tools/install.sh   the stack most MMPose users run, in .venv-torch21:
#                                              torch 2.1.2 + torchvision 0.16.2 (CUDA 12.1 builds,
#                                              about 5 GB with their nvidia packages; they run on
#                                              CPU too) and full mmcv 2.1.0 compiled with its CPU
#                                              ops (about 10 minutes on 2 cores)
#                                              (requirements/constraints-torch21.txt)
# VENV=path picks another location. See docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."
STACK="${STACK:-default}"
case "$STACK" in
  default) VENV="${VENV:-.venv}" ;;
  torch21) VENV="${VENV:-.venv-torch21}" ;;
  *) echo "[install] unknown STACK=$STACK (default or torch21)" >&2; exit 2 ;;
esac
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
inputs=(requirements/constraints.txt requirements/*.txt pyproject.toml setup.py)
stamp="$VENV/.installed-$STACK-$(cat "${inputs[@]}" | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then exit 0; fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

# The pins: constraints.txt, with the stack's own pins replacing those of the same packages.
C="$VENV/constraints.txt"
if [ "$STACK" = torch21 ]; then
  override=requirements/constraints-torch21.txt
  awk 'NR == FNR { if ($0 !~ /^#/ && NF) { split($0, a, "=="); pinned[tolower(a[1])] = 1 }; next }
       { split($0, a, "=="); if (!(tolower(a[1]) in pinned)) print }' \
      "$override" requirements/constraints.txt > "$C"
  grep -v '^#' "$override" >> "$C"
else
  cp requirements/constraints.txt "$C"
fi

echo "[install] $STACK stack into $VENV (a few minutes on first run)"
pip install -q -c "$C" setuptools wheel
pip install -q -c "$C" torch
if [ "$STACK" = torch21 ]; then
  # full mmcv instead of mmcv-lite: the same package name space, built below
  grep -v '^mmcv-lite' requirements/runtime.txt > "$VENV/runtime.txt"
else
  cp requirements/runtime.txt "$VENV/runtime.txt"
fi
pip install -q -c "$C" -r "$VENV/runtime.txt"
# torchvision and MMPose are installed without their declared dependencies:
#   the registry's torchvision wheel depends on the CUDA torch build; MMPose declares chumpy,
#   which does not build on Python 3.11 and is never imported. Their real dependencies are in
#   runtime.txt.
pip install -q -c "$C" --no-deps torchvision mmpose
if [ "$STACK" = torch21 ]; then
  echo "[install] compiling mmcv 2.1.0 with its CPU ops (about 10 minutes on 2 cores)"
  pip install -q -c "$C" ninja
  start=$SECONDS
  MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
    pip install -q -c "$C" --no-build-isolation mmcv
  echo "[install] mmcv compiled in $((SECONDS - start)) s"
fi
pip install -q -c "$C" --no-deps -e .
# munkres 1.1.4 beside the pinned 3.0.0, for the tests only (requirements/munkres-1.1.txt)
pip install -q --no-deps --upgrade --target "$VENV/munkres-1.1.4" -r requirements/munkres-1.1.txt
"$VENV/bin/python" -c "import higherhrnet_plugin, mmpose.models, torch; from higherhrnet_plugin.codecs import ae_maps; print('[install] ok: mmpose', __import__('mmpose').__version__, '/ torch', torch.__version__, '/ decoder kernels', 'compiled' if ae_maps.kernels_built() else 'not built (no C compiler?): the NumPy path, same results, slower')"
rm -f "$VENV"/.installed-*; touch "$stamp"
