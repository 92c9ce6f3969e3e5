"""Test set-up: two logical CPU devices (for MirroredStrategy) and float32 between tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "TFCOMP_CACHE_DIR" not in os.environ:  # generated data cached per test session, not in ~
    import tempfile

    os.environ["TFCOMP_CACHE_DIR"] = tempfile.mkdtemp(prefix="tfcomp-cache-")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture(autouse=True)
def float32_policy():
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")
