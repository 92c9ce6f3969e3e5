"""Bias gradients under mixed_bfloat16 (tfcomp.layers): against closed forms in numpy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcomp import layers
from tfcomp.codec.model import RGB_STD, Codec
from tfcomp.nets import registry


def bias_gradient(layer, x, upstream):
    """d sum(layer(x) * upstream) / d bias; closed form: upstream summed over all but channels."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(layer(x), tf.float32) * upstream)
    return tape.gradient(loss, layer.bias).numpy().astype(np.float64)


def relative_error(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


def conv_case(side, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, side, side, 16)).astype(np.float32)
    upstream = rng.normal(0.3, 1.0, size=(8, side, side, 4)).astype(np.float32)
    return x, upstream, upstream.astype(np.float64).sum(axis=(0, 1, 2))


def test_keras_convolution_sums_its_bias_gradient_in_bfloat16():
    """What tfcomp.layers works around (tensorflow/tensorflow#86378): Keras's Conv2D under
    mixed_bfloat16 on a CPU, 8 x 32 x 32 positions. Should TensorFlow sum it in float32 one
    day, this fails, and tfcomp.layers can go."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    x, upstream, want = conv_case(32)
    conv = keras.layers.Conv2D(4, 3, padding="same")
    conv.build(x.shape)
    assert relative_error(bias_gradient(conv, x, upstream), want) > 0.3


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "float32"])
@pytest.mark.parametrize("side", [8, 32, 128])
def test_bias_gradient_is_the_sum_of_the_upstream_gradient(policy, side):
    keras.mixed_precision.set_global_policy(policy)
    x, upstream, want = conv_case(side)
    for conv in (
        layers.Conv2D(4, 3, padding="same"),
        layers.Conv2DTranspose(4, 3, padding="same"),
    ):
        conv.build(x.shape)
        # One rounding to bfloat16 of the float32 sum (8 bits: 2^-8).
        assert relative_error(bias_gradient(conv, x, upstream), want) < 2**-8, type(conv)


@pytest.mark.parametrize(
    "keras_class, ours, kwargs",
    [
        (keras.layers.Conv2D, layers.Conv2D, dict(strides=2, activation="relu")),
        (keras.layers.Conv2DTranspose, layers.Conv2DTranspose, dict(strides=2)),
        (keras.layers.Conv2D, layers.Conv2D, dict(dilation_rate=2, use_bias=False)),
    ],
)
def test_float32_layers_compute_what_keras_computes(keras_class, ours, kwargs):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 12, 12, 5)).astype(np.float32))
    theirs, mine = keras_class(6, 5, padding="same", **kwargs), ours(6, 5, padding="same", **kwargs)
    theirs.build(x.shape)
    mine.build(x.shape)
    for w in mine.weights:
        w.assign(rng.normal(size=w.shape).astype(np.float32))
    theirs.set_weights(mine.get_weights())
    grads = []
    for layer in (theirs, mine):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        grads.append((y.numpy(), *[g.numpy() for g in tape.gradient(loss, [x, *layer.weights])]))
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_codec_bias_gradients_under_mixed_bfloat16():
    """The decoder's last bias moves each reconstructed channel by its scale: d sum(x_hat * u) /
    d bias_c = RGB_STD[c] * sum(u[..., c]) over 4 x 64 x 64 pixels (Keras's layer: 86% off)."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    codec = Codec(channels=4, num_centers=5)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, size=(4, 64, 64, 3)).astype(np.float32)
    upstream = rng.normal(0.5, 1.0, size=x.shape).astype(np.float32)
    last = codec.decoder.stack[-1]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(codec(x, training=True)["x_hat"] * upstream)
    got = tape.gradient(loss, last.bias).numpy().astype(np.float64)
    want = np.asarray(RGB_STD) * upstream.astype(np.float64).sum(axis=(0, 1, 2))
    assert relative_error(got, want) < 2**-7


def test_deeplab_head_computes_in_float32_under_mixed_bfloat16():
    """The ASPP branches are the float32 head's own (a sublayer takes the global policy unless
    told): their bias gradient is the loss gradient summed over every logit position, the same
    for each branch, as in float32."""
    grads = {}
    rng = np.random.default_rng(3)
    z = rng.normal(size=(8, 24, 24, 8)).astype(np.float32)
    upstream = rng.normal(0.2, 1.0, size=(8, 24, 24, 5)).astype(np.float32)
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        model = registry.build("cresnet39_d", 5, 8, width=0.125)
        model(tf.zeros([1, 8, 8, 8]))
        assert {b.compute_dtype for b in model.aspp.branches} == {"float32"}
        with tf.GradientTape() as tape:
            logits = model(z, training=False)["logits"]
            loss = tf.reduce_sum(logits * upstream)
        assert logits.dtype == tf.float32
        grads[policy] = [
            g.numpy() for g in tape.gradient(loss, [b.bias for b in model.aspp.branches])
        ]
    want = upstream.astype(np.float64).sum(axis=(0, 1, 2))
    for policy, per_branch in grads.items():
        for g in per_branch:
            assert relative_error(g.astype(np.float64), want) < 1e-5, policy
