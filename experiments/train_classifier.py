"""Trains ResNet / cResNet on RGB, reconstructed images or the compressed representation z.

  python -m experiments.train_classifier --config=tiny --arch=cresnet51 --input_mode=compressed \
      --codec=runs/codec/codec.keras --model_dir=runs/cls
  python -m experiments.train_classifier --config=small --arch=resnet50 --input_mode=rgb \
      --model_dir=runs/cls_rgb                                      # Imagenette
  python -m experiments.train_classifier --arch=cresnet51 --codec=CODEC.keras \
      --manual_dir=MANUAL --model_dir=runs/cresnet51                # the paper: ImageNet, GPUs
"""

from absl import app

from experiments import common
from flags import config as config_flags
from tfcomp.train.classification import train_classifier

config_flags.define("classifier")

if __name__ == "__main__":
    app.run(common.train_main("classifier", train_classifier))
