#!/usr/bin/env bash
# Table 1 on all 50,000 CIFAR-10 images on one GPU, as it ran on a lent NVIDIA H200 on 2026-11-30 (bench/README.md,
# "One NVIDIA H200"; the shipped results/constructed/cifar10/ and cifar10-eps1/): scripts/table-cifar10-full.sh's
# recipe (D reused from results/, then D_det, then D_rand: about 3.5 min each there), then D_det at eps 1.0 in a
# folder of its own (D is trained again there, about 1.5 min: a model is reused only in the folder it was trained for).
# Needs torch, numpy, pillow, safetensors and tqdm; not the dashboard's streamlit or altair.
# Usage: CIFAR10_ROOT=../shared/datasets/cifar10 scripts/table-cifar10-gpu.sh [OUT]
# A rented machine that receives only the working tree can take CIFAR-10's JPEG folders (55 MB) as one archive of
# the very files (18.5 MB, so the same pixels and sha256): `tar cf - -C ../shared/datasets cifar10 | xz -9 > X.tar.xz`
# here, then CIFAR10_TAR=X.tar.xz there: it is unpacked into $TMPDIR (or /tmp) and CIFAR10_ROOT set to it.
set -euo pipefail
if [ -n "${CIFAR10_TAR:-}" ]; then
    dest=${TMPDIR:-/tmp}/explorer-cifar10
    [ -d "$dest/cifar10/train" ] || { mkdir -p "$dest" && tar xJf "$CIFAR10_TAR" -C "$dest"; }
    export CIFAR10_ROOT=$dest/cifar10
fi
: "${CIFAR10_ROOT:?set CIFAR10_ROOT (or CIFAR10_TAR) to CIFAR-10}"
out=${1:-artifacts/constructed/cifar10/table-bf16}
PYTHON=${PYTHON:-python} scripts/table-cifar10-full.sh "$out"
"${PYTHON:-python}" -m explorer table --dataset cifar10 --arch resnet9 --epochs 30 --lr 0.01 --bf16 --out "$out-eps1" \
    --eps 1.0 --kinds original det
