"""Trains the compressive autoencoder with Eq. (1) (Section 3.1, Appendix A.1).

  python -m experiments.train_compression --config=tiny --model_dir=runs/codec
  python -m experiments.train_compression --config=small --operating_point=bpp0.635 \
      --model_dir=runs/codec_0.635                                  # Imagenette, CPU hours
  python -m experiments.train_compression --operating_point=bpp0.635 --manual_dir=MANUAL \
      --model_dir=runs/codec_0.635                                  # the paper: ILSVRC2012, GPUs
"""

from absl import app

from experiments import common
from flags import config as config_flags
from tfcomp.train.compression import train_codec

config_flags.define("codec")

if __name__ == "__main__":
    app.run(common.train_main("codec", train_codec))
