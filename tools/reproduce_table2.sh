#!/usr/bin/env bash
# The paper's Table 2 and figures with one driver, over the `experiments` commands.
#
#   tools/reproduce_table2.sh --scale=tiny  [--out=DIR] [--points=bpp0.0983,...]
#   tools/reproduce_table2.sh --scale=small [--out=DIR] [--points=...]   (DATA=../shared/datasets)
#   tools/reproduce_table2.sh --scale=paper [--out=DIR]   (MANUAL=dir with the ImageNet tars,
#       VOC_MANUAL=dir with VOCtrainval_11-May-2012.tar and benchmark.tgz, TFDS_DIR=prepared data;
#       nothing else: rate-distortion uses 1,000 ILSVRC2012 validation images, as the paper)
#
# Scales:
#   tiny   the embedded data: codecs on scikit-image's photographs, classification and
#          segmentation on the embedded labelled images (10 shapes on photographs, 64 x 64);
#          minutes on 2 CPU cores (`make reproduce`)
#   small  real data by path: codecs and classification on Imagenette, segmentation on CamVid,
#          rate-distortion on Kodak; CPU budgets (hours on 2 cores per operating point)
#   paper  ImageNet (TFDS imagenet2012, manual download) and VOC 2012 + SBD (voc2012_sbd) with
#          the paper's budgets: 600k codec steps, 28 classifier epochs, 20k segmentation steps,
#          9 joint epochs; MirroredStrategy over the local GPUs and mixed precision
#
# Every step writes its result file last (atomically); a step whose result exists is skipped, so
# an interrupted reproduction resumes where it stopped (trainers also resume from checkpoints).
# JOBS=n runs up to n independent steps at once (default 3 at tiny, 2 at small, 1 at paper scale,
# where each step already fills the GPUs).
# CPU budgets: beta ramps up over the whole of a short codec run (at full strength from the start
# the soft-entropy term drives y past the outer centers, where the quantizer's gradient vanishes,
# and the latent collapses: PSNR 12 dB at 0.0983 bpp after 500 tiny steps), and every operating
# point uses Adam 1e-3 (the paper's 1e-5 at 0.330 bpp is for 600k steps). A codec whose latent
# still collapses (soft H = hard H at the end; 3 of 18 tiny codecs in six runs) is kept aside as
# codec_P.collapsed_seedN and trained again with the next seed, twice at most (the log says so).
# Per step one progress line "==> [time] [k/N] what"; logs in $OUT/logs. At the end the table
# (Markdown and CSV, beside the paper's numbers) and the figures are written by tools/table2.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SCALE=tiny
OUT=
POINTS=
for arg in "$@"; do
  case $arg in
    --scale=*) SCALE=${arg#*=} ;;
    --out=*) OUT=${arg#*=} ;;
    --points=*) POINTS=${arg#*=} ;;
    *) echo "unknown argument $arg (expected --scale=tiny|small|paper, --out=DIR, --points=P,...)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-runs/table2_$SCALE}
DATA=${DATA:-../shared/datasets}

case $SCALE in
  tiny)
    POINTS=${POINTS:-bpp0.0983,bpp0.330,bpp0.635}
    JOINT_POINTS=${JOINT_POINTS:-bpp0.0983}
    CODEC_ARGS="--dataset=default --train_steps=400 --rate_warmup_steps=400 --learning_rate=1e-3 --batch_size=8 --crop_size=48 --checkpoint_every=200 --collapse_retries=2"
    RD_ARGS="--dataset=default"
    CLS_DATA=default
    CLS_ARGS="--resize=64 --crop_size=56 --width=0.25 --epochs=3 --batch_size=32 --base_lr=0.1 --cache --curve_every_epochs=1"
    SEG_DATA=default
    SEG_ARGS="--crop_size=64 --width=0.25 --train_steps=40 --batch_size=8 --base_lr=0.01 --val_limit=60 --cache --curve_every_steps=20"
    JOINT_ARGS="--resize=64 --crop_size=56 --batch_size=32 --epochs=1"
    BENCH_ARGS="--width=0.25 --batches=1,16 --repeats=2"
    FIG5_ARGS="--limit=30"  # the figure shows 3 images; each mIoU is in its own eval.json
    JOBS=${JOBS:-3}
    ;;
  small)
    POINTS=${POINTS:-bpp0.0983}
    JOINT_POINTS=${JOINT_POINTS:-bpp0.0983}
    CODEC_ARGS="--dataset=folder:$DATA/imagenette2 --train_steps=1000 --rate_warmup_steps=1000 --learning_rate=1e-3 --batch_size=16 --crop_size=64 --checkpoint_every=250 --collapse_retries=2"
    RD_ARGS="--dataset=folder:$DATA/kodak"
    CLS_DATA=folder:$DATA/imagenette2
    CLS_ARGS="--resize=96 --crop_size=80 --width=0.25 --epochs=4 --batch_size=32 --base_lr=0.1 --train_limit=1000 --val_limit=500 --cache --curve_every_epochs=1"
    SEG_DATA=camvid:$DATA/camvid
    SEG_ARGS="--crop_size=160 --width=0.25 --train_steps=100 --batch_size=8 --base_lr=0.01 --val_limit=50 --cache --curve_every_steps=50"
    JOINT_ARGS="--resize=96 --crop_size=80 --batch_size=32 --epochs=1 --train_limit=1000 --val_limit=500"
    BENCH_ARGS="--width=0.25 --batches=1,16 --repeats=3"
    FIG5_ARGS=
    JOBS=${JOBS:-2}
    ;;
  paper)
    POINTS=${POINTS:-bpp0.0983,bpp0.330,bpp0.635}
    JOINT_POINTS=${JOINT_POINTS:-bpp0.0983,bpp0.635}
    : "${MANUAL:?set MANUAL to the folder holding ILSVRC2012_img_{train,val}.tar}"
    : "${VOC_MANUAL:?set VOC_MANUAL to the folder holding VOCtrainval_11-May-2012.tar and benchmark.tgz}"
    TFDS="--tfds_data_dir=${TFDS_DIR:-$HOME/tensorflow_datasets}"
    GPU="--strategy=mirrored --mixed_precision"
    CODEC_ARGS="--dataset=imagenet2012 --manual_dir=$MANUAL $TFDS $GPU --train_steps=600000 --batch_size=30 --crop_size=128"
    RD_ARGS="--dataset=imagenet2012 --split=val --limit=1000 --manual_dir=$MANUAL $TFDS"  # Fig. 8 data
    CLS_DATA=imagenet2012
    CLS_ARGS="--manual_dir=$MANUAL $TFDS $GPU --epochs=28 --batch_size=64 --curve_every_epochs=1"
    SEG_DATA=voc2012_sbd
    SEG_ARGS="--manual_dir=$VOC_MANUAL $TFDS $GPU --train_steps=20000 --batch_size=10 --crop_size=320 --curve_every_steps=2000"
    JOINT_ARGS="--manual_dir=$MANUAL $TFDS $GPU --epochs=9 --batch_size=64"
    BENCH_ARGS="--width=1.0 --batches=1,64 --repeats=5"
    FIG5_ARGS="--manual_dir=$VOC_MANUAL $TFDS"
    JOBS=${JOBS:-1}
    ;;
  *) echo "unknown --scale=$SCALE (expected tiny, small or paper)" >&2; exit 2 ;;
esac

mkdir -p "$OUT/logs"
IFS=, read -r -a POINT_LIST <<< "$POINTS"
IFS=, read -r -a JOINT_LIST <<< "$JOINT_POINTS"
# Steps in total, for the progress lines: flops, per point (codec, 3 cls, 3 seg), 4 more at
# 0.0983, the RGB rows (2), RD, Fig. 5, per joint point (6 trainings + Fig. 11 RD), benchmark.
TOTAL=$((1 + 7 * ${#POINT_LIST[@]} + 2 + 1 + 1 + 7 * ${#JOINT_LIST[@]} + 1))
for p in "${POINT_LIST[@]}"; do [ "$p" = bpp0.0983 ] && TOTAL=$((TOTAL + 4)); done
K=0
START=$(date +%s)

# run NAME RESULT_FILE COMMAND...: skipped when RESULT_FILE exists; output to $OUT/logs/NAME.log.
# Up to $JOBS steps run at once (start-up and tracing are single-threaded, so two processes keep
# 2 cores busier); `phase` waits for every running step before steps that need their results.
# A failed step leaves NAME.failed in the logs; the driver stops at the next wait.
run() {
  local name=$1 result=$2; shift 2
  K=$((K + 1))
  if [ -e "$result" ]; then
    printf '==> [%s] [%d/%d] %s: done before, kept (%s)\n' "$(date +%H:%M:%S)" "$K" "$TOTAL" "$name" "$result"
    return
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; check_failures; done
  printf '==> [%s] [%d/%d] %s (%ds so far)\n' "$(date +%H:%M:%S)" "$K" "$TOTAL" "$name" $(($(date +%s) - START))
  step "$name" "$result" "$@" &
  [ "$JOBS" -gt 1 ] || phase
}
step() {
  local name=$1 result=$2; shift 2
  local log="$OUT/logs/${name//\//_}.log"
  if ! "$@" > "$log" 2>&1; then
    {
      echo "FAILED: $name; the last lines of $log:"
      tr '\r' '\n' < "$log" | grep -v -E '^(I0000|W0000|E0000)' | tail -15
    } > "${log%.log}.failed"
  elif [ ! -e "$result" ]; then
    echo "FAILED: $name finished without writing $result (see $log)" > "${log%.log}.failed"
  fi
}
check_failures() {
  local failed
  failed=$(find "$OUT/logs" -name '*.failed' | head -1)
  if [ -n "$failed" ]; then
    wait  # let steps still running finish: their results are kept for the rerun
    cat "$OUT"/logs/*.failed >&2
    exit 1
  fi
}
phase() {
  wait
  check_failures
}
rm -f "$OUT"/logs/*.failed

# shellcheck disable=SC2086
cls() {  # cls NAME ARCH INPUT CODEC
  run "cls/$1" "$OUT/cls/$1/eval.json" $PY -m experiments.train_classifier --dataset="$CLS_DATA" \
    --arch="$2" --input="$3" ${4:+--codec="$4"} $CLS_ARGS --model_dir="$OUT/cls/$1"
}
# shellcheck disable=SC2086
seg() {  # seg NAME ARCH INPUT CODEC INIT_CLASSIFIER
  run "seg/$1" "$OUT/seg/$1/eval.json" $PY -m experiments.train_segmentation --dataset="$SEG_DATA" \
    --arch="$2" --input="$3" ${4:+--codec="$4"} --init_classifier="$5" $SEG_ARGS --model_dir="$OUT/seg/$1"
}
codec_of() { echo "$OUT/codec_$1/codec.keras"; }

run flops "$OUT/flops.json" sh -c "$PY -m experiments.count_flops --json > '$OUT/flops.json.tmp' && mv '$OUT/flops.json.tmp' '$OUT/flops.json'"

# shellcheck disable=SC2086
for P in "${POINT_LIST[@]}"; do
  run "codec_$P" "$(codec_of "$P")" $PY -m experiments.train_compression --operating_point="$P" \
    $CODEC_ARGS --model_dir="$OUT/codec_$P"
done

phase

# The RGB baseline rows (top and bottom of Table 2), then every operating point's rows.
cls rgb/resnet50 resnet50 rgb ""
for P in "${POINT_LIST[@]}"; do
  C=$(codec_of "$P")
  cls "$P/resnet50" resnet50 reconstructed "$C"
  cls "$P/cresnet51" cresnet51 compressed "$C"
  cls "$P/cresnet39" cresnet39 compressed "$C"
  if [ "$P" = bpp0.0983 ]; then
    cls "$P/resnet71" resnet71 reconstructed "$C"
    cls "$P/cresnet72" cresnet72 compressed "$C"
  fi
done
CODECS=$(for P in "${POINT_LIST[@]}"; do printf '%s,' "$(codec_of "$P")"; done)
# shellcheck disable=SC2086
run rate_distortion "$OUT/rd/rd.json" $PY -m experiments.eval_compression --codecs="${CODECS%,}" \
  $RD_ARGS --output_dir="$OUT/rd"
phase

seg rgb/resnet50_d resnet50_d rgb "" "$OUT/cls/rgb/resnet50/classifier.keras"
for P in "${POINT_LIST[@]}"; do
  C=$(codec_of "$P")
  for net in resnet50 cresnet51 cresnet39 $([ "$P" = bpp0.0983 ] && echo resnet71 cresnet72); do
    input=compressed; [ "${net#c}" = "$net" ] && input=reconstructed
    seg "$P/${net}_d" "${net}_d" "$input" "$C" "$OUT/cls/$P/$net/classifier.keras"
  done
done
phase

FIG5_DIRS="$OUT/seg/rgb/resnet50_d"
for P in "${POINT_LIST[@]}"; do FIG5_DIRS="$FIG5_DIRS,$OUT/seg/$P/resnet50_d,$OUT/seg/$P/cresnet51_d"; done
# shellcheck disable=SC2086
run fig5 "$OUT/figures/fig5_segmentation.png" $PY -m experiments.eval_segmentation \
  --model_dirs="$FIG5_DIRS" --figure="$OUT/figures/fig5_segmentation.png" $FIG5_ARGS \
  --output="$OUT/seg/eval_all.json"

# Joint training (Section 6) and its control, then segmentation from both classifiers.
# shellcheck disable=SC2086
for P in "${JOINT_LIST[@]}"; do
  C=$(codec_of "$P"); J="$OUT/joint/$P"
  run "joint/$P/joint" "$J/joint/eval.json" $PY -m experiments.train_joint --mode=joint \
    --dataset="$CLS_DATA" --codec="$C" --classifier="$OUT/cls/$P/cresnet51/classifier.keras" \
    $JOINT_ARGS --model_dir="$J/joint"
  run "joint/$P/codec_ft" "$J/codec_ft/eval.json" $PY -m experiments.train_joint --mode=codec_only \
    --dataset="$CLS_DATA" --codec="$C" $JOINT_ARGS --model_dir="$J/codec_ft"
  phase
  cls "../joint/$P/control_scratch" cresnet51 compressed "$J/codec_ft/codec.keras"
  run "joint/$P/rate_distortion" "$J/rd/rd.json" $PY -m experiments.eval_compression \
    --codecs="$C,$J/codec_ft/codec.keras,$J/joint/codec.keras" --baselines= $RD_ARGS --output_dir="$J/rd"
  seg "../joint/$P/seg_joint" cresnet51_d compressed "$J/joint/codec.keras" "$J/joint/classifier.keras"
  phase
  run "joint/$P/control" "$J/control/eval.json" $PY -m experiments.train_joint --mode=classifier_only \
    --dataset="$CLS_DATA" --codec="$J/codec_ft/codec.keras" \
    --classifier="$J/control_scratch/classifier.keras" $JOINT_ARGS --model_dir="$J/control"
  phase
  seg "../joint/$P/seg_control" cresnet51_d compressed "$J/codec_ft/codec.keras" "$J/control/classifier.keras"
done

# Fig. 12 beside the last segmentation step (it needs no other result).
# shellcheck disable=SC2086
run benchmark_inference "$OUT/bench/inference.json" $PY tools/benchmark_inference.py $BENCH_ARGS \
  --json="$OUT/bench/inference.json"
phase

printf '==> [%s] Table 2 and figures\n' "$(date +%H:%M:%S)"
$PY tools/table2.py --run_dir="$OUT" --scale="$SCALE"
printf '==> [%s] done in %ds: %s/table2.md, %s/table2.csv, %s/figures/\n' "$(date +%H:%M:%S)" \
  $(($(date +%s) - START)) "$OUT" "$OUT" "$OUT"
