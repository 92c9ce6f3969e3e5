import numpy as np
import pytest
import tensorflow as tf

from tfcomp import configs
from tfcomp.codec import rate
from tfcomp.codec.losses import compression_loss, psnr_from_mse


def numpy_entropy(p):
    p = np.asarray(p, np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_soft_entropy_is_the_entropy_of_the_mean_assignment():
    w = np.random.default_rng(0).dirichlet(np.ones(6), size=(4, 3, 5)).astype(np.float32)
    expected = numpy_entropy(w.reshape(-1, 6).mean(0))
    assert float(rate.soft_entropy(tf.constant(w))) == pytest.approx(expected, rel=1e-5)


def test_hard_entropy_counts_symbols_and_ignores_empty_bins():
    symbols = np.array([0, 0, 1, 1, 1, 3, 3, 3, 3, 3])
    expected = numpy_entropy(np.bincount(symbols, minlength=6) / symbols.size)
    assert float(rate.hard_entropy(tf.constant(symbols), 6)) == pytest.approx(expected, rel=1e-6)
    assert float(rate.hard_entropy(tf.constant([2, 2, 2]), 6)) == 0.0
    assert float(rate.hard_entropy(tf.constant([0, 1, 2, 3]), 4)) == pytest.approx(2.0)


def test_channel_entropies_are_each_channels_own_and_never_above_the_pooled_one():
    rng = np.random.default_rng(1)
    # 3 channels of 6 centers: one spread, one on two centers, one stuck on center 5.
    symbols = np.stack(
        [rng.integers(0, 6, 400), rng.integers(0, 2, 400), np.full(400, 5)], -1
    ).reshape(4, 10, 10, 3)
    flat = symbols.reshape(-1, 3)
    expected = [numpy_entropy(np.bincount(flat[:, c], minlength=6) / 400) for c in range(3)]
    got = rate.channel_hard_entropy(tf.constant(symbols), 6).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got[2] == 0.0
    pooled = float(rate.hard_entropy(tf.constant(symbols), 6))
    assert pooled == pytest.approx(numpy_entropy(np.bincount(flat.ravel(), minlength=6) / 1200))
    assert pooled > got.mean() + 0.5  # the stuck channel costs the pooled estimate bits
    w = rng.dirichlet(np.ones(6), size=(4, 10, 10, 3)).astype(np.float32)
    w[..., 2, :] = np.eye(6, dtype=np.float32)[5]  # every assignment of channel 2 one-hot
    soft = rate.channel_soft_entropy(tf.constant(w)).numpy()
    expected = [numpy_entropy(w[..., c, :].reshape(-1, 6).mean(0)) for c in range(3)]
    np.testing.assert_allclose(soft, expected, rtol=1e-5, atol=1e-7)
    assert soft[2] == 0.0


@pytest.mark.parametrize(
    "name,paper_bpp,tolerance",
    # DESIGN.md: C=8, H_t=0.8 -> 0.1 bpp (paper 0.0983); C=32, H_t=1.265 -> 0.63 (paper 0.635).
    [("bpp0.0983", 0.0983, 0.02), ("bpp0.330", 0.330, 1e-9), ("bpp0.635", 0.635, 0.005)],
)
def test_operating_points_give_the_paper_rates(name, paper_bpp, tolerance):
    point = configs.get("codec", operating_point=name)
    bpp = rate.bits_per_pixel(point.target_entropy, point.channels)
    assert bpp == pytest.approx(paper_bpp, abs=tolerance)


def test_bits_per_pixel_is_h_times_c_over_64_and_inverts():
    assert rate.bits_per_pixel(1.0, 64) == 1.0
    assert rate.bits_per_symbol_for_bpp(rate.bits_per_pixel(1.3, 16), 16) == pytest.approx(1.3)


def test_unknown_operating_point_lists_the_known_ones():
    with pytest.raises(ValueError, match="bpp0.635"):
        configs.get("codec", operating_point="bpp9")


def _loss_and_entropy_gradient(entropy_value, target):
    entropy = tf.Variable(entropy_value)
    x = tf.constant([[10.0, 20.0]])
    outputs = {"x_hat": tf.constant([[13.0, 16.0]]), "entropy": entropy}
    with tf.GradientTape() as tape:
        terms = compression_loss(outputs, x, beta=600.0, target_entropy=target)
    return terms, tape.gradient(terms["loss"], entropy)


def test_rate_term_gives_no_gradient_below_the_target():
    terms, grad = _loss_and_entropy_gradient(0.5, target=0.8)
    assert float(terms["loss"]) == pytest.approx((9 + 16) / 2)  # MSE only
    assert grad is None or float(grad) == 0.0


def test_rate_term_above_the_target_is_beta_times_the_excess():
    terms, grad = _loss_and_entropy_gradient(1.0, target=0.8)
    assert float(terms["loss"]) == pytest.approx(12.5 + 600 * 0.2, rel=1e-5)
    assert float(grad) == pytest.approx(600.0)


def test_psnr_of_mse_one_is_48_13_db():
    assert float(psnr_from_mse(tf.constant(1.0))) == pytest.approx(20 * np.log10(255), rel=1e-6)
