"""Trains DeepLab (ASPP) on ResNet-d (RGB / reconstructed) or cResNet-d (compressed z).

CPU scale (CamVid):
  python -m experiments.train_segmentation --arch=cresnet51_d --input=compressed \
      --codec=runs/imagenette_c8/codec.keras --dataset=camvid:../shared/datasets/camvid \
      --width=0.25 --train_steps=600 --batch_size=8 --crop_size=256 --base_lr=0.01 --cache \
      --model_dir=runs/seg_cresnet51
Paper scale (VOC 2012 + SBD archives in MANUAL, GPUs):
  python -m experiments.train_segmentation --arch=cresnet51_d --input=compressed \
      --codec=runs/codec_0.635/codec.keras --init_classifier=runs/cresnet51/classifier.keras \
      --dataset=voc2012_sbd --manual_dir=MANUAL --strategy=mirrored --model_dir=runs/seg
"""

from absl import app, flags

from experiments import common
from flags import common as _common_flags  # noqa: F401
from flags import recognition as _recognition_flags  # noqa: F401
from flags import segmentation as _segmentation_flags  # noqa: F401
from flags import training as _training_flags  # noqa: F401
from tfcomp.train.segmentation import train_segmenter

FLAGS = flags.FLAGS


def main(argv):
    del argv
    train_segmenter(
        model_dir=FLAGS.model_dir,
        arch=FLAGS.arch,
        input_mode=FLAGS.input,
        codec_path=FLAGS.codec,
        dataset=FLAGS.dataset,
        init_classifier=FLAGS.init_classifier,
        train_steps=FLAGS.train_steps,
        batch_size=FLAGS.batch_size,
        base_lr=FLAGS.base_lr,
        weight_decay=FLAGS.weight_decay,
        width=FLAGS.width,
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
        curve_every_steps=FLAGS.curve_every_steps,
        seed=FLAGS.seed,
    )


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
