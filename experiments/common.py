"""Helpers shared by the experiment entry points: flags -> configs, clean failures."""

import functools
import json
import sys

import tensorflow as tf
from absl import flags

from flags import config as config_flags
from tfcomp.data.sources import DataError, data_error_message
from tfcomp.data.store import StoreError
from tfcomp.eval.models import ModelError
from tfcomp.train.compression import LatentCollapse
from tfcomp.train.loop import NonFiniteLossError

FLAGS = flags.FLAGS


def config_from_flags(task):
    """The config `--config` names, with every field flag that was given applied."""
    return config_flags.config_from_flags(task, FLAGS)


def exit_cleanly(main):
    """Turns the errors a user can cause (bad data, bad values, NaN loss) into one stderr line."""

    @functools.wraps(main)
    def wrapped(argv):
        try:
            return main(argv)
        except (
            DataError,
            StoreError,
            ModelError,
            NonFiniteLossError,
            LatentCollapse,
            FileNotFoundError,
            ValueError,
        ) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        except tf.errors.OpError as error:  # a broken file found while tf.data read it
            message = data_error_message(error)
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)

    return wrapped


def train_main(task, train):
    """The whole `main` of a training experiment: config from flags, train, print metrics."""

    def main(argv):
        del argv
        outcome = train(config_from_flags(task), FLAGS.model_dir)
        if outcome is not None and outcome.metrics is not None:
            print(json.dumps(outcome.metrics, indent=2))

    return exit_cleanly(main)
