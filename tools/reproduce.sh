#!/usr/bin/env bash
# The main job on the embedded default data (scikit-image's bundled photographs), a few
# minutes on 2 CPU cores:
#   1. FLOP counts of the networks (paper Section 3.1),
#   2. train a codec at the 0.0983 bpp operating point under the tiny preset, longer and on
#      64x64 crops,
#   3. compress the held-out photos to .tfc files with the CLI and decompress them,
#   4. rate-distortion against JPEG and JPEG 2000 (real file sizes), Fig. 8 and Fig. 9 style.
# Everything lands in $OUT (default runs/reproduce). A finished training step is skipped on a
# rerun; an interrupted one resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/reproduce}
STEPS=${STEPS:-800}
mkdir -p "$OUT"

step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

step "1/4 FLOP counts (paper Section 3.1)"
$PY -m experiments.count_flops | tee "$OUT/flops.txt"

step "2/4 codec on the embedded photos ($STEPS steps, C=8, H_t=0.8, beta=600; kept if done)"
$PY -m experiments.train_compression --config=tiny --operating_point=bpp0.0983 \
  --train_steps="$STEPS" --rate_warmup_steps=$((STEPS / 4)) --crop_size=64 --checkpoint_every=100 \
  --model_dir="$OUT/codec"

step "3/4 tfcomp compress / decompress of the held-out photos"
PHOTOS=$($PY -c "from tfcomp.data import embedded; print(' '.join(embedded.photo_paths('test')))")
# shellcheck disable=SC2086
$PY -m tfcomp compress --model "$OUT/codec/codec.keras" $PHOTOS -o "$OUT/files"
$PY -m tfcomp decompress --model "$OUT/codec/codec.keras" "$OUT"/files/*.tfc -o "$OUT/files"
$PY -m tfcomp info "$OUT"/files/*.tfc

step "4/4 rate-distortion against JPEG and JPEG 2000"
$PY -m experiments.eval_compression --config=tiny --codecs="$OUT/codec/codec.keras" \
  --output_dir="$OUT/rd"
step "done: $OUT/rd/rd.json, $OUT/rd/rd.png, $OUT/rd/latents_codec.png, $OUT/files/"
