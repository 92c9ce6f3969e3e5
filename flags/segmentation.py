"""Flags of the segmentation trainer (paper Section 5, Appendix A.5)."""

from absl import flags

from tfcomp.data.classification import INPUT_MODES
from tfcomp.nets.resnet import RESNET_SPECS

flags.DEFINE_enum(
    "arch", "cresnet51_d", sorted(f"{n}_d" for n in RESNET_SPECS), "Dilated network + ASPP."
)
flags.DEFINE_enum("input", "compressed", list(INPUT_MODES), "rgb, reconstructed or compressed.")
flags.DEFINE_string(
    "init_classifier", None, "classifier.keras of the same architecture to start the backbone."
)
flags.DEFINE_integer("train_steps", 20_000, "Iterations (paper: 20k).")
flags.DEFINE_integer("batch_size", 10, "Global batch size (paper: 10).")
flags.DEFINE_float("base_lr", 1e-3, "Initial lr (x10 on the ASPP layer), poly decay power 0.9.")
flags.DEFINE_float("weight_decay", 5e-4, "L2 weight decay on kernels.")
flags.DEFINE_integer("crop_size", 320, "Training crop in pixels (z crops are crop_size / 8).")
flags.DEFINE_integer(
    "curve_every_steps", 0, "Validation mIoU every this many steps into curve.json (Fig. 4)."
)
