#!/bin/bash
# Crop-grid pilot (issue 15: does z's fewer crop positions explain its gap to the
# reconstructions?): ResNet-50 on the 0.0983 bpp reconstructions as the grid's
# cls/bpp0.0983/resnet50.seed1 (same codec draw 80c6c2d080eb78e7, store and seed), the only
# change --crop_grid=8: training crops start at multiples of 8 pixels (9 positions, as z has).
cd /work/main
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
OUT=$HOME/tfcomp_runs/table2_small
.venv/bin/python -m experiments.train_classifier --config=small --data_dir=/work/shared/datasets \
  --arch=resnet50 --input_mode=reconstructed --codec=$OUT/codec_bpp0.0983/codec.keras \
  --dataset=store:$OUT/stores/bpp0.0983/classifier --seed=1 --crop_grid=8 \
  --model_dir=$HOME/tfcomp_runs/pilots/recon_grid8
