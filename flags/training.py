"""Flags every trainer shares: checkpoints, summaries, and the recognisers' data budget."""

from absl import flags

flags.DEFINE_integer("checkpoint_every", 500, "Steps between checkpoints.")
flags.DEFINE_integer("summary_every", 50, "Steps between TensorBoard summaries.")
