"""Flags of the rate-distortion evaluation (`experiments.eval_compression`); the data source
comes from `flags.common` (--dataset, --tfds_data_dir, --manual_dir)."""

from absl import flags

flags.DEFINE_list("codecs", [], "Trained codec .keras files (one operating point each).")
flags.DEFINE_string(
    "images",
    None,
    "A folder of images to evaluate on (e.g. Kodak); the same as --dataset=folder:DIR and wins "
    "over --dataset.",
)
flags.DEFINE_string("split", "test", "Split of the source (a sub-folder name for folder:PATH).")
flags.DEFINE_integer("limit", None, "Evaluate the first N images only (all when unset).")
flags.DEFINE_list("baselines", ["jpeg", "jpeg2000"], "Baselines to sweep: jpeg, jpeg2000.")
flags.DEFINE_string("output_dir", "runs/rd", "Folder for rd.json and the figures.")
