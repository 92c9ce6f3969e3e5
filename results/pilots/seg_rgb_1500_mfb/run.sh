#!/bin/bash
# Segmenter pilot with median-frequency class weights (issue 15 item 3): as seg_rgb_1500 (RGB
# ResNet-50-d from the small preset's RGB ResNet-50, 1,500 steps of batch 8, 160 px crops, the
# same 50 validation images), the only change --class_weighting=median_frequency.
cd /work/main
OUT=$HOME/tfcomp_runs/table2_small
.venv/bin/python -m experiments.train_segmentation --config=small --data_dir=$(realpath ../shared/datasets) \
  --arch=resnet50_d --input_mode=rgb --init_classifier=$OUT/cls/rgb/resnet50/classifier.keras \
  --model_dir=$HOME/tfcomp_runs/segpilot/rgb_1500_mfb --train_steps=1500 --curve_every_steps=250 \
  --val_limit=50 --class_weighting=median_frequency
