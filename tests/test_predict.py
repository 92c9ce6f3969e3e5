"""The compiled predictor computes what the Keras model computes in inference."""

import numpy as np
import pytest
import tensorflow as tf

from tfcomp.eval.predict import Predictor, fold
from tfcomp.nets import registry


def _trained_looking(model, x, seed):
    """Non-trivial batch-norm statistics and scales, as a trained network has."""
    rng = np.random.default_rng(seed)
    backbone = getattr(model, "backbone", model)
    for layer in backbone._flatten_layers(include_self=False):
        if hasattr(layer, "moving_variance"):
            shape = layer.moving_variance.shape
            layer.moving_mean.assign(rng.normal(0, 0.3, shape).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, shape).astype(np.float32))
            layer.gamma.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))
            layer.beta.assign(rng.normal(0, 0.2, shape).astype(np.float32))
    backbone.set_input_mean(rng.uniform(-0.5, 0.5, backbone.input_channels).astype(np.float32))


@pytest.mark.parametrize(
    "name,shape", [("resnet_tiny", (40, 40, 3)), ("cresnet_tiny", (9, 7, 8)),
                   ("cresnet_tiny_d", (10, 12, 8)), ("resnet_tiny_d", (48, 40, 3))],
)  # fmt: skip
def test_folded_constant_predictor_equals_the_keras_model(name, shape):
    model = registry.build(name, 5, shape[-1], 0.25)
    x = np.random.default_rng(0).uniform(0, 255 if shape[-1] == 3 else 2, (3, *shape))
    x = x.astype(np.float32)
    model(x)
    _trained_looking(model, x, seed=len(name))
    expected = model(x, training=False)["logits"].numpy()
    predicted = Predictor(model, "float32")(x).numpy()
    np.testing.assert_allclose(predicted, expected, rtol=1e-4, atol=1e-4)
    # Any batch size and input size through the same compiled function, in bfloat16 too.
    bf16 = Predictor(model, "bfloat16")
    assert bf16(x[:1]).dtype == tf.float32
    np.testing.assert_allclose(
        bf16(x).numpy(), expected, rtol=0.1, atol=0.1 * np.abs(expected).max()
    )


def test_fold_is_batch_norm_after_the_convolution_in_closed_form():
    import keras

    conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)
    bn = keras.layers.BatchNormalization(epsilon=1e-3)
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 3)).astype(np.float32)
    bn(conv(x))
    bn.moving_mean.assign([0.1, -0.2, 0.3, 0.0])
    bn.moving_variance.assign([1.0, 2.0, 0.5, 4.0])
    bn.gamma.assign([1.5, 0.5, 1.0, 2.0])
    bn.beta.assign([0.0, 1.0, -1.0, 0.5])
    kernel, bias = fold(conv, bn)
    scale = np.array([1.5, 0.5, 1.0, 2.0]) / np.sqrt(np.array([1.0, 2.0, 0.5, 4.0]) + 1e-3)
    np.testing.assert_allclose(kernel, conv.kernel.numpy() * scale, rtol=1e-6)
    np.testing.assert_allclose(bias, np.array([0.0, 1.0, -1.0, 0.5]) - [0.1, -0.2, 0.3, 0] * scale,
                               rtol=1e-6)  # fmt: skip
    folded = tf.nn.conv2d(x, kernel, 1, "SAME") + bias
    np.testing.assert_allclose(folded.numpy(), bn(conv(x), training=False).numpy(), atol=1e-5)
