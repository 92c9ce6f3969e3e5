#!/usr/bin/env bash
# Issue 5's CPU-scale comparison on Imagenette at one operating point: ResNet-50 on original and
# on reconstructed images, cResNet-51 and cResNet-39 on z. Same budget for every network.
# Usage: tools/imagenette_classification.sh CODEC.keras [OUT] ; finished runs are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CODEC=$1
OUT=${2:-runs/imagenette_cls}
DATA=${DATA:-folder:${TFCOMP_DATA:-../shared/datasets}/imagenette2}
BUDGET=${BUDGET:---width=0.25 --epochs=8 --batch_size=32 --base_lr=0.1 --train_limit=3000 --val_limit=1000 --cache}
mkdir -p "$OUT"
run() {
  local name=$1; shift
  if [ -f "$OUT/$name/eval.json" ]; then echo "skip $name (done)"; return; fi
  echo "==> [$(date +%H:%M:%S)] $name"
  # shellcheck disable=SC2086
  $PY -m experiments.train_classifier --dataset="$DATA" --codec="$CODEC" $BUDGET \
    --model_dir="$OUT/$name" "$@" 2>&1 | tr '\r' '\n' | grep -v -E '^(I0000|W0000|E0000)' | awk 'NR % 50 == 0 || /top1|top5|error/' 
  cat "$OUT/$name/eval.json"
}
run cresnet51_z --arch=cresnet51 --input=compressed
run cresnet39_z --arch=cresnet39 --input=compressed
run resnet50_rgb --arch=resnet50 --input=rgb
run resnet50_reconstructed --arch=resnet50 --input=reconstructed
echo "==> [$(date +%H:%M:%S)] done: $OUT/*/eval.json"
