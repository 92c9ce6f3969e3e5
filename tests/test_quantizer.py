import numpy as np
import tensorflow as tf

from tfcomp.codec.quantizer import Quantizer, quantize, range_excess

CENTERS = np.array([-1.7, -0.6, 0.1, 0.9, 2.2], np.float64)
SIGMA = 1.3


def numpy_soft(y, centers, sigma):
    logits = -sigma * (y[..., None] - centers) ** 2
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return (w * centers).sum(-1)


def test_forward_is_the_nearest_center_exactly():
    y = np.random.default_rng(0).normal(scale=2.0, size=(4, 5, 6)).astype(np.float32)
    z, symbols = quantize(tf.constant(y), tf.constant(CENTERS, tf.float32), SIGMA)
    nearest = np.argmin(np.abs(y[..., None] - CENTERS.astype(np.float32)), -1)
    np.testing.assert_array_equal(symbols.numpy(), nearest)
    np.testing.assert_array_equal(z.numpy(), CENTERS.astype(np.float32)[nearest])
    assert symbols.dtype == tf.int32
    assert symbols.numpy().min() >= 0 and symbols.numpy().max() < len(CENTERS)


def test_backward_is_the_gradient_of_the_soft_assignment():
    rng = np.random.default_rng(1)
    y = rng.normal(scale=1.5, size=(3, 7)).astype(np.float32)
    upstream = rng.normal(size=y.shape).astype(np.float32)
    y_t = tf.constant(y)
    c_t = tf.constant(CENTERS, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([y_t, c_t])
        z, _ = quantize(y_t, c_t, SIGMA)
        objective = tf.reduce_sum(z * upstream)
    d_y, d_c = tape.gradient(objective, [y_t, c_t])

    # Independent numpy reference: central finite differences of soft(y) in float64.
    eps = 1e-6
    y64 = y.astype(np.float64)
    ref_dy = (numpy_soft(y64 + eps, CENTERS, SIGMA) - numpy_soft(y64 - eps, CENTERS, SIGMA)) / (
        2 * eps
    )
    np.testing.assert_allclose(d_y.numpy(), upstream * ref_dy, rtol=1e-4, atol=1e-5)
    ref_dc = np.zeros_like(CENTERS)
    for m in range(len(CENTERS)):
        step = np.zeros_like(CENTERS)
        step[m] = eps
        diff = numpy_soft(y64, CENTERS + step, SIGMA) - numpy_soft(y64, CENTERS - step, SIGMA)
        ref_dc[m] = np.sum(upstream * diff / (2 * eps))
    np.testing.assert_allclose(d_c.numpy(), ref_dc, rtol=1e-4, atol=1e-4)

    # And the analytic gradient, derived on paper and computed in numpy: with w = softmax(a),
    # a_j = -sigma (y - c_j)^2, d soft / dy = 2 sigma Var_w(c) (the variance of the centers
    # under the soft assignment), and d soft / dc_m = w_m (1 + 2 sigma (y - c_m)(c_m - soft)).
    logits = -SIGMA * (y64[..., None] - CENTERS) ** 2
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    soft = (w * CENTERS).sum(-1, keepdims=True)
    variance = (w * (CENTERS - soft) ** 2).sum(-1)
    np.testing.assert_allclose(d_y.numpy(), upstream * 2 * SIGMA * variance, rtol=1e-4, atol=1e-5)
    d_soft_dc = w * (1 + 2 * SIGMA * (y64[..., None] - CENTERS) * (CENTERS - soft))
    analytic_dc = (upstream[..., None] * d_soft_dc).reshape(-1, len(CENTERS)).sum(0)
    np.testing.assert_allclose(d_c.numpy(), analytic_dc, rtol=1e-4, atol=1e-4)


def test_range_excess_is_the_mean_squared_distance_past_the_outer_centers():
    centers = tf.constant([-2.0, -0.5, 0.7, 2.0])
    y = tf.constant([[-5.0, -2.0, 0.0, 1.9], [2.5, 9.0, -2.25, 0.3]])
    excess = np.maximum(y.numpy() - 2.0, 0) ** 2 + np.maximum(-2.0 - y.numpy(), 0) ** 2
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([y, centers])
        value = range_excess(y, centers)
    assert float(value) == np.float32(excess.mean())  # (9 + 0.25 + 49 + 0.0625) / 8
    # Its gradient moves y back toward the span, only where y is outside it, and not the
    # centers (the quantizer's own gradient moves those).
    expected = (2 * np.maximum(y.numpy() - 2.0, 0) - 2 * np.maximum(-2.0 - y.numpy(), 0)) / 8
    np.testing.assert_allclose(tape.gradient(value, y).numpy(), expected, rtol=1e-6)
    assert tape.gradient(value, centers) is None
    assert float(range_excess(tf.constant([-2.0, 0.0, 2.0]), centers)) == 0.0


def test_layer_centers_start_evenly_spaced_and_stay_float32_under_mixed_precision():
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    layer = Quantizer(num_centers=5)
    out = layer(tf.zeros([2, 3], tf.bfloat16))
    np.testing.assert_allclose(layer.centers.numpy(), [-2, -1, 0, 1, 2])
    assert out["z"].dtype == tf.float32 and layer.centers.dtype == "float32"
    assert out["assignment"].shape == (2, 3, 5)


def test_layer_config_round_trips():
    layer = Quantizer(num_centers=4, sigma=2.5, init_range=1.0)
    clone = Quantizer.from_config(layer.get_config())
    assert (clone.num_centers, clone.sigma, clone.init_range) == (4, 2.5, 1.0)


def test_invalid_arguments_are_refused_with_the_value():
    import pytest

    with pytest.raises(ValueError, match="Received: num_centers=1"):
        Quantizer(num_centers=1)
    with pytest.raises(ValueError, match="sigma"):
        Quantizer(sigma=0)
