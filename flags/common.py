"""Flags shared by every experiment: data, output folder, distribution and precision."""

from absl import flags

flags.DEFINE_string(
    "dataset",
    "default",
    "Data source: 'default' (embedded data: photographs for codecs, labelled shapes on "
    "photographs for classifiers and segmenters), 'folder:PATH' (image files below PATH or "
    "PATH/<split>, class folders for classifiers), 'camvid:PATH', 'voc2012_sbd', "
    "'store:DIR' (a compressed store), or a TFDS dataset name such as 'imagenet2012'.",
)
flags.DEFINE_string("tfds_data_dir", None, "TFDS data directory (where prepared datasets live).")
flags.DEFINE_string(
    "manual_dir",
    None,
    "TFDS manual download directory holding the official archives (e.g. ILSVRC2012 tars).",
)
flags.DEFINE_string("model_dir", "runs/codec", "Folder for checkpoints, summaries and models.")
flags.DEFINE_enum(
    "strategy",
    "default",
    ["default", "mirrored", "multi_worker"],
    "Distribution strategy; multi_worker reads the cluster from the TF_CONFIG variable.",
)
flags.DEFINE_bool(
    "mixed_precision",
    False,
    "Compute in bfloat16 on CPU / float16 with loss scaling on GPU; variables, the quantizer and "
    "the rate terms stay float32.",
)
flags.DEFINE_integer("seed", 0, "Random seed for weights and data order.")
