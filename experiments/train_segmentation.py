"""Trains DeepLab (ASPP) on ResNet-d (RGB / reconstructed) or cResNet-d (compressed z).

  python -m experiments.train_segmentation --config=small --arch=cresnet51_d \
      --codec=runs/codec/codec.keras --init_classifier=runs/cls/classifier.keras \
      --model_dir=runs/seg                                          # CamVid
  python -m experiments.train_segmentation --arch=cresnet51_d --codec=CODEC.keras \
      --init_classifier=CRESNET51.keras --manual_dir=MANUAL --model_dir=runs/seg
                                                                    # the paper: VOC 2012 + SBD
"""

from absl import app

from experiments import common
from flags import config as config_flags
from tfcomp.train.segmentation import train_segmenter

config_flags.define("segmenter")

if __name__ == "__main__":
    app.run(common.train_main("segmenter", train_segmenter))
