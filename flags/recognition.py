"""Flags shared by the classifier and segmenter trainers (Sections 4 and 5)."""

from absl import flags

flags.DEFINE_string("codec", None, "Trained codec.keras (for reconstructed / compressed).")
flags.DEFINE_float("width", 1.0, "Channel width multiplier (1.0 is the paper).")
flags.DEFINE_bool("cache", False, "Keep transformed examples in memory (small datasets).")
flags.DEFINE_integer("train_limit", None, "Use only this many training examples.")
flags.DEFINE_integer("val_limit", None, "Evaluate on only this many validation examples.")
