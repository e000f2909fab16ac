#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py) on a machine with JAX and no TensorFlow, from the repository root.
#
# Installs Keras and this package from wheels in .whl/ (nothing is fetched: build ours with
# `pip wheel --no-deps -w .whl .` beside keras-3.x, namex and optree wheels for the machine's Python), then
# runs the check on the JAX backend. Extra arguments go to gpu_check.py (e.g. --cpu, --budget-s 300);
# SCRIPT=gpu_profile.py runs the 1024² inference profile instead.
# Output: the console, and $OUT/log + $OUT/gpu_check.json (OUT defaults to /tmp/gpu_check_out).
set -o pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-/tmp/gpu_check_out}"
PY="${PYTHON:-python3}"
SITE="${SITE:-/tmp/stylegan_site}"
mkdir -p "$OUT"
if ! ls "$REPO"/.whl/stylegan_tf-*.whl >/dev/null 2>&1; then
    echo "gpu_check.sh: no stylegan_tf wheel in $REPO/.whl: run 'pip wheel --no-deps -w .whl .' first" >&2
    exit 2
fi
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$REPO"/.whl/*.whl || exit 1
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
# Run from outside the checkout so that the installed wheel, not the source tree, is what gets imported.
cd /tmp && "$PY" "$REPO/benchmarks/${SCRIPT:-gpu_check.py}" --json "$OUT/${SCRIPT:-gpu_check.py}.json" "$@" 2>&1 | tee "$OUT/log"
