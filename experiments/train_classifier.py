"""Trains ResNet / cResNet on RGB, reconstructed images or the compressed representation z.

CPU scale (Imagenette, width 1/4, a few epochs):
  python -m experiments.train_classifier --arch=cresnet51 --input=compressed \
      --codec=runs/imagenette_c8/codec.keras --dataset=folder:../shared/datasets/imagenette2 \
      --width=0.25 --epochs=6 --cache --model_dir=runs/cls_cresnet51
Paper scale (ImageNet, GPUs):
  python -m experiments.train_classifier --arch=cresnet51 --input=compressed \
      --codec=runs/codec_0.635/codec.keras --dataset=imagenet2012 --manual_dir=MANUAL \
      --strategy=mirrored --mixed_precision --epochs=28 --batch_size=64 --model_dir=runs/cresnet51
"""

import json

from absl import app, flags

from experiments import common
from flags import classification as _classification_flags  # noqa: F401
from flags import common as _common_flags  # noqa: F401
from flags import recognition as _recognition_flags  # noqa: F401
from flags import training as _training_flags  # noqa: F401
from tfcomp.train.classification import train_classifier

FLAGS = flags.FLAGS


def main(argv):
    del argv
    _, _, evaluation = train_classifier(
        model_dir=FLAGS.model_dir,
        arch=FLAGS.arch,
        input_mode=FLAGS.input,
        codec_path=FLAGS.codec,
        dataset=FLAGS.dataset,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        base_lr=FLAGS.base_lr,
        weight_decay=FLAGS.weight_decay,
        width=FLAGS.width,
        resize=FLAGS.resize,
        crop_size=FLAGS.crop_size,
        cache=FLAGS.cache,
        train_limit=FLAGS.train_limit,
        val_limit=FLAGS.val_limit,
        strategy=FLAGS.strategy,
        mixed_precision=FLAGS.mixed_precision,
        tfds_data_dir=FLAGS.tfds_data_dir,
        manual_dir=FLAGS.manual_dir,
        checkpoint_every=FLAGS.checkpoint_every,
        summary_every=FLAGS.summary_every,
        curve_every_epochs=FLAGS.curve_every_epochs,
        seed=FLAGS.seed,
    )
    if evaluation is not None:
        print(json.dumps(evaluation, indent=2))


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
