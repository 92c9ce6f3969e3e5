"""Flags of the classifier trainer and evaluator (paper Section 4, Appendix A.4)."""

from absl import flags

from tfcomp.data.classification import INPUT_MODES
from tfcomp.nets.resnet import RESNET_SPECS

flags.DEFINE_enum("arch", "cresnet51", sorted(RESNET_SPECS), "Network (Table 1).")
flags.DEFINE_enum(
    "input",
    "compressed",
    list(INPUT_MODES),
    "rgb: original images; reconstructed: decoded by the fixed codec; compressed: the fixed "
    "encoder's quantized latent z (no decoder).",
)
flags.DEFINE_integer("epochs", 28, "Epochs; the lr drops at 8/28, 16/28, 24/28 of them.")
flags.DEFINE_integer("batch_size", 64, "Global batch size (paper: 64).")
flags.DEFINE_float("base_lr", 0.025, "SGD lr at batch 64, scaled linearly with the batch.")
flags.DEFINE_float("weight_decay", 1e-4, "L2 weight decay on kernels.")
flags.DEFINE_integer("resize", 256, "Shorter side before cropping, pixels.")
flags.DEFINE_integer("crop_size", 224, "Crop side in pixels (z crops are crop_size / 8).")
flags.DEFINE_float(
    "curve_every_epochs",
    0.0,
    "Evaluate on the validation split every this many epochs into curve.json (Fig. 3); 0: off.",
)
