"""Distribution strategies and precision policies named by plain strings.

    default        the default (single-device) strategy
    mirrored       MirroredStrategy over the visible GPUs (or logical CPU devices)
    multi_worker   MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG variable

Mixed precision is float16 on GPUs, where the trainer wraps the optimizer in a
LossScaleOptimizer, and bfloat16 on CPUs that compute it natively (AVX-512 BF16, AMX, Arm BF16:
1.3-3x float32 on this project's networks); other CPUs emulate bfloat16, 16x slower than
float32 on the codec, so there mixed precision means float32.
"""

import json
import os

import keras
import tensorflow as tf
from absl import logging

from tfcomp import hardware

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy()  # NCCL all-reduce
        # On CPUs, collective all-reduce instances of two strategies in one process (tests,
        # notebooks) collide ("Shape mismatch in the collective instance"); reducing to one
        # device avoids that and costs nothing between logical CPU devices.
        return tf.distribute.MirroredStrategy(cross_device_ops=tf.distribute.ReductionToOneDevice())
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy 'multi_worker' needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")


def is_chief(strategy):
    """True on the worker that writes checkpoints, summaries and final models."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs
    )


def worker_id():
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = config.get("task", {})
    return f"{task.get('type', 'worker')}_{task.get('index', 0)}"


def precision_policy(mixed_precision):
    """'float32', or the mixed policy suited to the hardware present: mixed_float16 on GPUs,
    mixed_bfloat16 on CPUs with native bfloat16, else float32 (emulated bfloat16 is slower)."""
    if not mixed_precision:
        return "float32"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    if hardware.cpu_has_native_bfloat16():
        return "mixed_bfloat16"
    logging.log_first_n(  # once per process, not at each trainer or predictor built
        logging.WARNING,
        "mixed precision asked, but this CPU has no native bfloat16 (none of %s in its flags): "
        "training in float32, which is faster here (%s=1 forces mixed_bfloat16)",
        1,
        sorted(hardware.NATIVE_BFLOAT16_FLAGS),
        hardware.BFLOAT16_ENV,
    )
    return "float32"


def set_precision(mixed_precision):
    """Sets Keras' global dtype policy and returns its name."""
    policy = precision_policy(mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def wrap_optimizer(optimizer):
    """Adds dynamic loss scaling under mixed_float16 (bfloat16 has float32's range)."""
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
