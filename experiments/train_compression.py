"""Trains the compressive autoencoder with Eq. (1).

Tiny (embedded photos, a few minutes on 2 CPU cores):
  python -m experiments.train_compression --operating_point=bpp0.0983 --train_steps=300 \
      --batch_size=8 --crop_size=64 --model_dir=runs/codec_tiny
Paper scale (ImageNet from the official tars in MANUAL, GPUs):
  python -m experiments.train_compression --operating_point=bpp0.635 --dataset=imagenet2012 \
      --manual_dir=MANUAL --strategy=mirrored --mixed_precision --train_steps=600000 \
      --batch_size=30 --crop_size=224 --model_dir=runs/codec_0.635
"""

from absl import app, flags

from experiments import common
from flags import common as _common_flags  # noqa: F401  (defines the flags)
from flags import compression as _compression_flags  # noqa: F401
from flags import training as _training_flags  # noqa: F401
from tfcomp.train.compression import train_compression_retrying

FLAGS = flags.FLAGS


def main(argv):
    del argv
    hyper = common.codec_hyperparameters(FLAGS)
    train_compression_retrying(
        model_dir=FLAGS.model_dir,
        collapse_retries=FLAGS.collapse_retries,
        dataset=FLAGS.dataset,
        batch_size=FLAGS.batch_size,
        crop_size=FLAGS.crop_size,
        train_steps=FLAGS.train_steps,
        rate_warmup_steps=FLAGS.rate_warmup_steps,
        strategy=FLAGS.strategy,
        mixed_precision=FLAGS.mixed_precision,
        tfds_data_dir=FLAGS.tfds_data_dir,
        manual_dir=FLAGS.manual_dir,
        checkpoint_every=FLAGS.checkpoint_every,
        summary_every=FLAGS.summary_every,
        seed=FLAGS.seed,
        **hyper,
    )


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
