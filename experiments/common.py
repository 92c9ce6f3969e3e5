"""Helpers shared by the experiment entry points: flags -> plain values, clean failures."""

import functools
import sys

import tensorflow as tf

from tfcomp.codec.presets import get_operating_point
from tfcomp.data.sources import DataError, data_error_message
from tfcomp.data.store import StoreError
from tfcomp.train.loop import NonFiniteLossError

DEFAULT_OPERATING_POINT = "bpp0.0983"


def codec_hyperparameters(flag_values):
    """C, L, H_t, beta and lr: explicit flags win over the operating point's values."""
    point = get_operating_point(flag_values.operating_point or DEFAULT_OPERATING_POINT)
    explicit = {
        "channels": flag_values.channels,
        "num_centers": flag_values.num_centers,
        "target_entropy": flag_values.target_entropy,
        "beta": flag_values.beta,
        "learning_rate": flag_values.learning_rate,
    }
    return {k: (getattr(point, k) if v is None else v) for k, v in explicit.items()}


def exit_cleanly(main):
    """Turns the errors a user can cause (bad data, bad values, NaN loss) into one stderr line."""

    @functools.wraps(main)
    def wrapped(argv):
        try:
            return main(argv)
        except (DataError, StoreError, NonFiniteLossError, FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        except tf.errors.OpError as error:  # a broken file found while tf.data read it
            message = data_error_message(error)
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)

    return wrapped
