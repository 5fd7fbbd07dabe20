#!/usr/bin/env bash
# Table 1 on all 50,000 CIFAR-10 training images with the paper's D_rand / D_det recipe (targeted L2 PGD from
# cifar10-standard, eps 0.5, 100 steps of 0.1), a ResNet-9 trained 30 epochs at lr 0.01 on each, tested on all
# 10,000 real test images. Resumable: run it again after a kill; finished shards (500 images), trained models
# (each epoch) and evaluations are kept under OUT (default artifacts/constructed/cifar10/table).
# D_det first (the row the paper's claim rests on), then D joins it (a table to ship: D and D_det), then D_rand.
# On the 2-core CPU: about 2.4 h to build each of D_det and D_rand (85-87 s per 500-image shard when nothing else
# runs; D_det took 12,062 s over three sessions, some of it beside test runs), about 70 min to train each model
# (30 epochs of 50,000 images: D_det's took 4,176 s), 2 min to evaluate it on the 10,000 test images.
# Usage: CIFAR10_ROOT=../shared/datasets/cifar10 scripts/table-cifar10-full.sh [OUT]
set -euo pipefail
: "${CIFAR10_ROOT:?set CIFAR10_ROOT to CIFAR-10: the torchvision files or an image-folder tree}"
out=${1:-artifacts/constructed/cifar10/table}
common=(--dataset cifar10 --arch resnet9 --epochs 30 --lr 0.01 --out "$out")
python -m explorer table "${common[@]}" --kinds det
python -m explorer table "${common[@]}" --kinds original det
exec python -m explorer table "${common[@]}" --kinds original rand det
