"""Finetunes the codec and a cResNet-51 jointly with Eq. (2), or one of them alone (the control).

Tiny scale (the embedded labelled data; what tools/reproduce_table2.sh --scale=tiny runs):
  python -m experiments.train_joint --codec=runs/t2/codec_bpp0.0983/codec.keras \
      --classifier=runs/t2/bpp0.0983/cresnet51/classifier.keras --dataset=default \
      --resize=64 --crop_size=56 --batch_size=32 --epochs=3 --model_dir=runs/t2/joint
Paper scale (ImageNet, A.8: gamma 0.001, SGD 0.0025 / 10 every 3 epochs, 9 epochs):
  python -m experiments.train_joint --codec=CODEC.keras --classifier=CRESNET51.keras \
      --dataset=imagenet2012 --manual_dir=MANUAL --strategy=mirrored --mixed_precision \
      --model_dir=runs/joint_0.0983
The control (Section 6.1): --mode=codec_only, then train_classifier from scratch on the new
codec, then --mode=classifier_only for 9 more epochs.
beta and H_t default to the values in the codec's config.json (its operating point).
"""

import json
import os

from absl import app, flags

from experiments import common
from flags import common as _common_flags  # noqa: F401
from flags import joint as _joint_flags  # noqa: F401
from flags import recognition as _recognition_flags  # noqa: F401
from flags import training as _training_flags  # noqa: F401
from tfcomp.codec.presets import get_operating_point
from tfcomp.train.joint import train_joint

FLAGS = flags.FLAGS


def codec_rate_settings(codec_path):
    """(beta, H_t) the codec was trained with, from its config.json; else the 0.0983 point's."""
    config_path = os.path.join(os.path.dirname(codec_path or ""), "config.json")
    if os.path.isfile(config_path):
        with open(config_path) as f:
            config = json.load(f)
        if "beta" in config and "target_entropy" in config:
            return config["beta"], config["target_entropy"]
    point = get_operating_point(common.DEFAULT_OPERATING_POINT)
    return point.beta, point.target_entropy


def main(argv):
    del argv
    beta, target = codec_rate_settings(FLAGS.codec)
    _, _, _, evaluation = train_joint(
        model_dir=FLAGS.model_dir,
        codec_path=FLAGS.codec,
        classifier_path=FLAGS.classifier,
        dataset=FLAGS.dataset,
        mode=FLAGS.mode,
        gamma=FLAGS.gamma,
        beta=FLAGS.beta if FLAGS.beta is not None else beta,
        target_entropy=FLAGS.target_entropy if FLAGS.target_entropy is not None else target,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        base_lr=FLAGS.base_lr,
        weight_decay=FLAGS.weight_decay,
        resize=FLAGS.resize,
        crop_size=FLAGS.crop_size,
        train_limit=FLAGS.train_limit,
        val_limit=FLAGS.val_limit,
        strategy=FLAGS.strategy,
        mixed_precision=FLAGS.mixed_precision,
        tfds_data_dir=FLAGS.tfds_data_dir,
        manual_dir=FLAGS.manual_dir,
        checkpoint_every=FLAGS.checkpoint_every,
        summary_every=FLAGS.summary_every,
        seed=FLAGS.seed,
    )
    if evaluation is not None:
        print(json.dumps(evaluation, indent=2))


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
