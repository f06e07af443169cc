#!/usr/bin/env bash
# Puerta del seed: the doctor, then a short real training smoke in the plain and the planned
# settings, with both throughputs side by side (`fisuras benchmark`).
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
"$PY" scripts/utils/verificar_gpu.py
doctor=$?
"$PY" -m fisuras benchmark --steps "${STEPS:-10}" "$@"
bench=$?
[ "$doctor" -eq 0 ] && [ "$bench" -eq 0 ]
