#!/bin/bash
# Pilot: does the bfloat16 bias gradient of DeepLab's head explain the bfloat16 segmenters' deficit?
# cResNet-72-d on z, trained again exactly as the grid's seg/bpp0.0983/cresnet72_d.seed1 (its
# config.json: same codec draw 25aeb43db5900d55, classifier, seed and so data order; float32),
# the one change that each ASPP branch's bias gradient is TensorFlow's BiasAddGrad of the
# gradient cast to bfloat16: what a CPU computed for the head under mixed_bfloat16 before a91d82b
# (the branches then took the global policy). Run from a copy of the tree (autograph reads a
# function's source when it traces it: an edited file under a running trainer breaks it).
cd "$(dirname "$0")/../../.."
OUT=$HOME/tfcomp_runs/table2_small
.venv/bin/python - --config=$OUT/seg/bpp0.0983/cresnet72_d.seed1/config.json \
  --model_dir=$HOME/tfcomp_runs/pilots/seg_cresnet72_d_seed1_f32_bf16_head_bias_grad <<'PY'
import sys

import tensorflow as tf
from absl import app

from tfcomp.nets import deeplab


@tf.custom_gradient
def bias_add_bf16_grad(y, bias):
    def grad(dy):
        gb = tf.raw_ops.BiasAddGrad(out_backprop=tf.cast(dy, tf.bfloat16))
        return dy, tf.cast(gb, bias.dtype)

    return tf.nn.bias_add(y, bias), grad


def call(self, x):
    outs = []
    for b in self.branches:
        if not b.built:
            b.build(x.shape)
        y = b.convolution_op(tf.cast(x, b.compute_dtype), b.kernel)
        outs.append(bias_add_bf16_grad(y, tf.convert_to_tensor(b.bias)))
    return tf.add_n(outs)


deeplab.ASPP.call = call
from experiments import common  # noqa: E402
from experiments import train_segmentation  # noqa: E402, F401  (defines the flags)
from tfcomp.train.segmentation import train_segmenter  # noqa: E402

sys.argv = ["train_segmentation", *sys.argv[1:]]
app.run(common.train_main("segmenter", train_segmenter))
PY
