"""Writes results/pilots/codec_bpp0.0983_f32_no_range/: the small 0.0983 bpp codec without the
range penalty, float32, seed 0 (two runs: the first to step 4,700, its replay with the channel
watch to step 1,001), its Kodak curve, logged metrics and, at step 4,500, each channel's y and
symbols on 24 Kodak images."""

import glob
import json
import os
import platform
import sys
from collections import defaultdict

import numpy as np
import tensorflow as tf
from PIL import Image

OUT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(OUT, "..", "..", ".."))  # the repository
from tfcomp import configs  # noqa: E402
from tfcomp.train import compression as C  # noqa: E402
from tfcomp.train import loop  # noqa: E402

P = os.path.expanduser("~/tfcomp_runs/pilots")  # the two runs' folders (not in git)


def scalars(run, tags):
    d = defaultdict(dict)
    for f in sorted(glob.glob(f"{P}/{run}/train/events*")):
        for e in tf.compat.v1.train.summary_iterator(f):
            for v in e.summary.value:
                if v.tag in tags:
                    d[e.step][v.tag] = round(float(tf.make_ndarray(v.tensor)), 5)
    return [{"step": s, **d[s]} for s in sorted(d) if s % 50 == 0]


cfg = configs.get(
    "codec",
    "small",
    operating_point="bpp0.0983",
    range_weight=0.0,
    data_dir="/work/shared/datasets",
)
state = C.codec_state(cfg)
state["optimizer"].build(state["model"].trainable_variables)
tf.train.Checkpoint(**state, **loop.every_variable(state)).restore(
    f"{P}/codec_bpp0.0983_f32_seed0_deadchannels/checkpoints/ckpt-4500"
).expect_partial()
codec = state["model"]
ys, ss = [], []
for f in sorted(glob.glob("/work/shared/datasets/kodak/*.png")):
    y = codec.analysis(tf.constant(np.asarray(Image.open(f).convert("RGB"))[None], tf.float32))
    ys.append(y.numpy().reshape(-1, 8))
    ss.append(codec.quantizer(y)["symbols"].numpy().reshape(-1, 8))
y, s = np.concatenate(ys), np.concatenate(ss)


def H(p):
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


channels = []
for c in range(8):
    p = np.bincount(s[:, c], minlength=6) / len(s)
    channels.append(
        {
            "channel": c,
            "y_percentiles_1_50_99": [
                round(float(v), 3) for v in np.percentile(y[:, c], [1, 50, 99])
            ],
            "symbol_frequencies": [round(float(v), 4) for v in p],
            "entropy_bits": round(H(p), 4),
        }
    )
pooled = H(np.bincount(s.ravel(), minlength=6) / s.size)
tags = {"mse", "entropy", "entropy_hard", "entropy_channels", "one_hot_channels"}
record = {
    "what": "small 0.0983 bpp codec, range_weight 0 (the preset before it), float32, seed 0",
    "command": (
        "python -m experiments.train_compression --config=small --data_dir=$DATA "
        "--operating_point=bpp0.0983 --range_weight=0 --model_dir=..."
    ),
    "config": json.loads(json.dumps(configs.to_dict(cfg), default=list)),
    "machine": {
        "cpu": "AMD EPYC (AVX2, no native bfloat16)",
        "cores": 2,
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
    },
    "first_run": {
        "stopped_at_step": 4700,
        "kodak_curve": json.load(open(f"{P}/codec_bpp0.0983_f32_seed0_deadchannels/curve.json")),
        "collapse_watch": json.load(
            open(f"{P}/codec_bpp0.0983_f32_seed0_deadchannels/collapse_watch.json")
        ),
        "logged_every_50_steps": scalars("codec_bpp0.0983_f32_seed0_deadchannels", tags),
    },
    "channels_at_step_4500_on_kodak": {
        "centers": [round(float(v), 4) for v in codec.quantizer.centers.numpy()],
        "pooled_entropy_bits": round(pooled, 4),
        "mean_channel_entropy_bits": round(
            float(np.mean([c["entropy_bits"] for c in channels])), 4
        ),
        "channels": channels,
    },
    "replay_with_channel_watch": {
        "rollbacks": json.load(open(f"{P}/codec_bpp0.0983_f32_seed0_watch/rollbacks.json")),
        "logged_every_50_steps": scalars("codec_bpp0.0983_f32_seed0_watch", tags),
    },
}
with open(f"{OUT}/result.json", "w") as f:
    json.dump(record, f, indent=1)
print(pooled, np.mean([c["entropy_bits"] for c in channels]))
