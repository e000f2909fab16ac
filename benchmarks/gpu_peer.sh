#!/usr/bin/env bash
# Ours against rosinality/style-based-gan-pytorch on the same GPU (benchmarks/gpu_peer.py), from the repository
# root of a machine with JAX and PyTorch and no TensorFlow; `--journey` runs the demo and compare_archs instead.
#
# Needs, carried as ignored paths (prepare them where pip and TensorFlow work; docs/performance.md, "A PyTorch
# StyleGAN on the same GPU"):
#   .whl/        this package's wheel (`pip wheel --no-deps -w .whl .`) beside keras, namex and optree wheels
#   .gpu_peer/   style-based-gan-pytorch/ (a checkout of the peer; --journey needs no peer)
# Extra arguments go to gpu_peer.py (e.g. --cpu, --budget-s 300, --only inf-1024-bf16,train-256-fp32).
# Output: the console, and $OUT/gpu_peer.log + $OUT/gpu_peer.json (or gpu_journey.*; OUT defaults to
# /tmp/gpu_peer_out).
set -o pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-/tmp/gpu_peer_out}"
PY="${PYTHON:-python3}"
SITE="${SITE:-/tmp/stylegan_site}"
WHEELS="${WHEELS:-$REPO/.whl}"
export PEER_DIR="${PEER_DIR:-$REPO/.gpu_peer/style-based-gan-pytorch}"
NAME=gpu_peer
for arg in "$@"; do [ "$arg" = "--journey" ] && NAME=gpu_journey; [ "$arg" = "--" ] && break; done
mkdir -p "$OUT"
if [ "$NAME" = gpu_peer ] && [ ! -f "$PEER_DIR/model.py" ]; then
    echo "gpu_peer.sh: no style-based-gan-pytorch checkout at $PEER_DIR: get it with" \
         "\`git clone https://github.com/rosinality/style-based-gan-pytorch $PEER_DIR\` (or set PEER_DIR)" >&2
    exit 2
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
if ls "$WHEELS"/stylegan_tf-*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "$WHEELS"/*.whl || exit 1
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
elif ! "$PY" -c "import keras, stylegan_tf" >/dev/null 2>&1; then
    echo "gpu_peer.sh: no stylegan_tf wheel in $WHEELS and no keras/stylegan_tf to import: run" \
         "'pip wheel --no-deps -w .whl .' (plus keras, namex, optree wheels) first" >&2
    exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
# Run from outside the checkout so that the installed wheel, not the source tree, is what gets imported.
cd /tmp && "$PY" "$REPO/benchmarks/gpu_peer.py" --json "$OUT/$NAME.json" "$@" 2>&1 | tee "$OUT/$NAME.log"
