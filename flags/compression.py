"""Flags of the compression trainer and evaluator (paper Section 3.1, Appendix A.1)."""

from absl import flags

from tfcomp.codec.presets import OPERATING_POINTS

flags.DEFINE_enum(
    "operating_point",
    None,
    sorted(OPERATING_POINTS),
    "Paper operating point whose C, H_t, beta and learning rate are used unless given "
    "explicitly by the flags below.",
)
flags.DEFINE_integer("channels", None, "C, channels of the latent (8 / 16 / 32 in the paper).")
flags.DEFINE_integer("num_centers", None, "L, number of learned quantization centers.")
flags.DEFINE_float("target_entropy", None, "H_t of Eq. (1) in bits/symbol.")
flags.DEFINE_float("beta", None, "Weight of the rate penalty in Eq. (1), per bit/symbol.")
flags.DEFINE_float("learning_rate", None, "Adam learning rate.")
flags.DEFINE_integer("batch_size", 30, "Global batch size in images (paper: 30).")
flags.DEFINE_integer("crop_size", 128, "Side of the random square training crops, pixels.")
flags.DEFINE_integer("train_steps", 1000, "Total optimisation steps (paper: 600,000).")
flags.DEFINE_integer(
    "rate_warmup_steps",
    0,
    "Ramp beta linearly from 0 over this many steps (0: the paper, full beta from the start). "
    "Short CPU runs need it: the full rate term at initialisation can collapse the latent onto "
    "one quantization center.",
)
flags.DEFINE_integer(
    "collapse_retries",
    0,
    "Train again with the next seed, up to this many times, when the latent collapsed (soft "
    "entropy = hard entropy at the end: every y past the outer centers); the collapsed run is "
    "kept as MODEL_DIR.collapsed_seedN. 0: the paper (no retries).",
)
