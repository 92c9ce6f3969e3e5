"""Helpers shared by the experiment entry points: flags -> configs, clean failures."""

import functools
import json
import sys

import tensorflow as tf
from absl import flags

from tfcomp import configs
from tfcomp.data.sources import DataError, data_error_message
from tfcomp.data.store import StoreError
from tfcomp.eval.models import ModelError
from tfcomp.train.compression import LatentCollapse
from tfcomp.train.loop import NonFiniteLossError

FLAGS = flags.FLAGS


def config_from_flags(task):
    """The config `--config` names, with every field flag that was given applied."""
    cls = configs.TASKS[task]
    overrides = {}
    for name in configs.field_help(cls):
        value = FLAGS[name].value
        if value is None:
            continue
        kind, element = configs.field_type(cls, name)
        overrides[name] = tuple(element(v) for v in value) if kind is tuple else value
    return configs.resolve(task, FLAGS.config, FLAGS.data_dir, **overrides)


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
