#!/usr/bin/env bash
# Train the bundled CIFAR-10 pair with our own CLI (resumable: run it again after a kill).
# Usage: CIFAR10_ROOT=../shared/datasets/cifar10 scripts/train-cifar10.sh standard|standard-finetune|robust-l2|robust-linf [OUT_DIR]
# Each epoch writes OUT_DIR/NAME.state.pt; a finished run leaves NAME.safetensors and NAME.json there (the
# card: recipe, code version, time, hardware). The bundled cifar10-standard is `standard` (15 epochs, saved as
# cifar10-standard-base) then `standard-finetune` (4 more epochs at lr 0.02 from it, into OUT_DIR/ft).
set -euo pipefail
kind=${1:?standard, robust-l2 or robust-linf}
out=${2:-artifacts/train}
mkdir -p "$out"
common=(--arch resnet9 --dataset cifar10 --batch-size 128 --lr 0.1 --warmup-epochs 1 --out-dir "$out")
case "$kind" in
  standard)    args=(--name cifar10-standard --epochs 15) ;;
  standard-finetune)
               out="$out/ft"; mkdir -p "$out"; common=(--arch resnet9 --dataset cifar10 --batch-size 128 --out-dir "$out")
               args=(--name cifar10-standard --epochs 4 --lr 0.02 --init-from "${2:-artifacts/train}/cifar10-standard-base.safetensors") ;;
  robust-l2)   args=(--name cifar10-robust-l2 --epochs 12 --adv l2 --eps 0.5 --attack-steps 2 --eps-warmup-epochs 1) ;;
  robust-linf) args=(--name cifar10-robust-linf --epochs 12 --adv linf --eps 0.0313725 --attack-steps 3 --eps-warmup-epochs 1) ;;
  *) echo "unknown kind $kind" >&2; exit 2 ;;
esac
name=${args[1]}
resume=()
[ -f "$out/$name.state.pt" ] && resume=(--resume)
exec python -m explorer train "${common[@]}" "${args[@]}" "${resume[@]}"
