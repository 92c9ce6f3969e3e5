"""Flags of the joint finetuning (paper Section 6, Appendix A.8)."""

from absl import flags

from tfcomp.train.joint import MODES

flags.DEFINE_enum(
    "mode",
    "joint",
    list(MODES),
    "joint: codec + classifier with Eq. (2); codec_only: the control's codec finetuning; "
    "classifier_only: the classifier on the fixed codec.",
)
flags.DEFINE_string("classifier", None, "Trained cResNet classifier.keras to start from.")
flags.DEFINE_float("gamma", 0.001, "Weight of the compression loss in Eq. (2) (paper: 0.001).")
flags.DEFINE_float(
    "beta", None, "Rate weight of Eq. (1); default: the value the codec was trained with."
)
flags.DEFINE_float(
    "target_entropy", None, "H_t of Eq. (1); default: the value the codec was trained with."
)
flags.DEFINE_integer("epochs", 9, "Epochs; the lr drops by 10 every third of them (paper: 9).")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_float("base_lr", 0.0025, "SGD lr at batch 64, scaled linearly with the batch.")
flags.DEFINE_float("weight_decay", 1e-4, "L2 weight decay on the classifier's kernels.")
flags.DEFINE_integer("resize", 256, "Shorter side before cropping, pixels.")
flags.DEFINE_integer("crop_size", 224, "Image crop side in pixels (z crops are crop_size / 8).")
