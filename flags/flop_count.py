"""Flags of `experiments.count_flops`."""

from absl import flags

flags.DEFINE_bool("json", False, "Print JSON instead of a table.")
