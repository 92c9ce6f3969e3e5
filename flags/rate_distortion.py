"""Flags of `experiments.eval_compression` beside the evaluation config's (`--config`,
`--rd_dataset`, `--rd_split`, `--rd_limit`, `--baselines`, from `flags.config`)."""

from absl import flags

from flags import config as config_flags

config_flags.define("eval", model_dir=False)
flags.DEFINE_list("codecs", [], "Trained codec .keras files (one operating point each).")
flags.DEFINE_string(
    "images",
    None,
    "A folder of images to evaluate on (e.g. Kodak); the same as --rd_dataset=folder:DIR, "
    "split and limit ignored.",
)
flags.DEFINE_string("output_dir", "runs/rd", "Folder for rd.json and the figures.")
flags.DEFINE_bool(
    "domain",
    False,
    "Evaluate on the config's domain images (--domain_dataset, --domain_split, --domain_limit: "
    "the codecs' own kind of data) instead of --rd_dataset's.",
)
