"""Flags of `experiments.count_flops`."""

from absl import flags

flags.DEFINE_string("json", None, "Also write the table as JSON to this file.")
