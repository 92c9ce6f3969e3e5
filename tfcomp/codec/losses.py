"""The rate-distortion loss, paper Eq. (1): L_c = MSE(x, x_hat) + beta * max(H(q) - H_t, 0).

MSE is measured in squared pixel units (0..255 scale), the scale at which the paper's beta values
(150, 600) and target entropies (bits/symbol) balance: below the target the rate term is exactly
zero and gives no gradient.
"""

import tensorflow as tf


def mse(x, x_hat):
    """Mean squared error in squared 0..255 pixel units."""
    return tf.reduce_mean(tf.square(tf.cast(x, tf.float32) - tf.cast(x_hat, tf.float32)))


def rate_penalty(entropy, target_entropy):
    """max(H - H_t, 0) in bits/symbol."""
    return tf.nn.relu(entropy - target_entropy)


def compression_loss(outputs, x, beta, target_entropy):
    """Eq. (1) from a `Codec` output dict; returns dict(loss, mse, rate_penalty)."""
    distortion = mse(x, outputs["x_hat"])
    penalty = rate_penalty(outputs["entropy"], target_entropy)
    return {"loss": distortion + beta * penalty, "mse": distortion, "rate_penalty": penalty}


def psnr_from_mse(mse_value):
    """PSNR in dB for 8-bit images: 10 log10(255^2 / MSE)."""
    return 10.0 * tf.math.log(255.0**2 / tf.maximum(mse_value, 1e-10)) / tf.math.log(10.0)
