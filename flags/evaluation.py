"""Flags of the classifier and segmenter evaluations (`experiments.eval_classification`,
`experiments.eval_segmentation`)."""

from absl import flags

flags.DEFINE_string(
    "dataset", None, "Data source (default: the one each model was trained on, its config)."
)
flags.DEFINE_string("split", "val", "Split to evaluate.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data directory (default: the model's config).")
flags.DEFINE_string("manual_dir", None, "TFDS manual directory (default: the model's config).")
flags.DEFINE_integer(
    "limit", None, "Evaluate only this many examples (default: the preset's fig5_limit, or all)."
)
flags.DEFINE_string(
    "config", "paper", "Preset (paper, small, tiny) whose evaluation settings apply (EvalConfig)."
)
flags.DEFINE_string("output", None, "Also write the results as JSON here.")
