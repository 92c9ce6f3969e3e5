"""Finetunes the codec and a cResNet-51 jointly with Eq. (2), or one of them alone (the control).

  python -m experiments.train_joint --config=tiny --codec=runs/codec/codec.keras \
      --classifier=runs/cls/classifier.keras --model_dir=runs/joint
  python -m experiments.train_joint --codec=CODEC.keras --classifier=CRESNET51.keras \
      --manual_dir=MANUAL --model_dir=runs/joint          # the paper (A.8): ImageNet, GPUs
The control (Section 6.1): --mode=codec_only, then train_classifier from scratch on the new
codec, then --mode=classifier_only for the same schedule. beta and H_t default to the codec's.
"""

from absl import app

from experiments import common
from flags import config as config_flags
from tfcomp.train.joint import train_joint

config_flags.define("joint")

if __name__ == "__main__":
    app.run(common.train_main("joint", train_joint))
