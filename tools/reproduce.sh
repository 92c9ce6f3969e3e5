#!/usr/bin/env bash
# The main job on the embedded default data (scikit-image's bundled photographs):
# train a small codec at the 0.0983 bpp operating point's settings and evaluate it on the
# held-out photos. Writes runs/reproduce/{codec,eval.json}. Finished steps are skipped on a rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/reproduce}
STEPS=${STEPS:-600}
mkdir -p "$OUT"

step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

step "FLOP counts (paper Section 3.1)"
$PY -m experiments.count_flops | tee "$OUT/flops.txt"

if [ ! -f "$OUT/codec/codec.keras" ] || ! grep -q "\"train_steps\": $STEPS" "$OUT/codec/config.json"; then
  step "training a codec on the embedded photos ($STEPS steps, C=8, H_t=0.8, beta=600)"
  $PY -m experiments.train_compression --operating_point=bpp0.0983 --train_steps="$STEPS" \
    --batch_size=8 --crop_size=64 --checkpoint_every=100 --model_dir="$OUT/codec"
else
  step "codec already trained: $OUT/codec/codec.keras"
fi

step "evaluating on the held-out embedded photos"
$PY -m experiments.eval_compression --codec="$OUT/codec/codec.keras" --output="$OUT/eval.json"
step "done: $OUT/eval.json (per image and mean), TensorBoard logs in $OUT/codec/train"
