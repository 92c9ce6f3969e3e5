"""Scalar quantization with L learned centers (paper Appendix A.1; Agustsson et al., 2017).

Each entry of the encoder output y is quantized on its own to one of L scalar centers
c_1..c_L. The paper's Q-tilde behaves like hard quantization in the forward pass and like the
soft assignment in the backward pass:

    w_j(y)  = softmax_j(-sigma * (y - c_j)^2)          soft assignment, sums to 1 over j
    soft(y) = sum_j w_j(y) c_j                          differentiable surrogate
    hard(y) = c_k with k = argmin_j |y - c_j|           value used in the forward pass

`quantize` returns hard(y) with the gradient of soft(y) (with respect to y and to the centers).
"""

import keras
import tensorflow as tf


def soft_assignment(y, centers, sigma):
    """w_j(y) = softmax_j(-sigma (y - c_j)^2), shape y.shape + [L], float32."""
    distances = tf.square(tf.expand_dims(y, -1) - centers)
    return tf.nn.softmax(-sigma * distances, axis=-1)


def range_excess(y, centers):
    """Mean over the entries of y of its squared distance beyond the outermost centers (0 within
    [min c, max c]); the centers are held fixed (its gradient moves y only).

    Past the outermost centers the soft assignment turns one-hot, so soft(y) is flat and the
    quantizer passes y no gradient, while hard(y) is the outer center however far y is: a
    channel pushed out there carries nothing and stays (README, Known limitations). This
    penalty, not in the paper, is what then moves it back; for y within the centers' span, and
    for the forward pass, it changes nothing."""
    y = tf.cast(y, tf.float32)
    centers = tf.stop_gradient(tf.convert_to_tensor(centers, tf.float32))
    above = tf.nn.relu(y - tf.reduce_max(centers))
    below = tf.nn.relu(tf.reduce_min(centers) - y)
    return tf.reduce_mean(tf.square(above) + tf.square(below))


def nearest_symbols(y, centers):
    """Index of the nearest center for every entry of y, int32 in [0, L)."""
    distances = tf.abs(tf.expand_dims(y, -1) - centers)
    return tf.argmin(distances, axis=-1, output_type=tf.int32)


def quantize(y, centers, sigma):
    """Hard quantization forward, gradient of the soft quantization backward.

    Args:
      y: float32 tensor of any shape.
      centers: float32 tensor [L].
      sigma: python float, the softmax's inverse temperature.

    Returns:
      (z, symbols): z = centers[symbols] (same shape as y); symbols int32 in [0, L).
    """

    @tf.custom_gradient
    def _quantize(y, centers):
        symbols = nearest_symbols(y, centers)
        hard = tf.gather(centers, symbols)

        def grad(dz):
            # Closed-form derivatives of soft(y) = sum_j w_j c_j, with logits
            # a_j = -sigma (y - c_j)^2:
            #   d soft / d y   = sum_j c_j w_j (a'_j - sum_k w_k a'_k),  a'_j = -2 sigma (y - c_j)
            #   d soft / d c_m = w_m + w_m * 2 sigma (y - c_m) (c_m - soft)
            w = soft_assignment(y, centers, sigma)
            diff = tf.expand_dims(y, -1) - centers
            soft = tf.reduce_sum(w * centers, axis=-1, keepdims=True)
            da = -2.0 * sigma * diff
            d_y = tf.reduce_sum(centers * w * (da - tf.reduce_sum(w * da, -1, keepdims=True)), -1)
            d_c = w + w * 2.0 * sigma * diff * (centers - soft)
            dz_e = tf.expand_dims(dz, -1)
            num_centers = centers.shape[0] or tf.shape(centers)[0]  # static where known (XLA)
            d_centers = tf.reduce_sum(tf.reshape(dz_e * d_c, [-1, num_centers]), 0)
            return dz * d_y, d_centers

        return hard, grad

    symbols = nearest_symbols(tf.stop_gradient(y), tf.stop_gradient(centers))
    return _quantize(y, centers), symbols


@keras.saving.register_keras_serializable(package="tfcomp")
class Quantizer(keras.layers.Layer):
    """L learned scalar centers; always computes in float32 (also under mixed precision).

    Centers start evenly spaced in [-2, 2] and sigma = 1, the values of Mentzer et al. (2018),
    who use this quantizer with L = 6; the paper leaves both open.
    """

    def __init__(self, num_centers=6, sigma=1.0, init_range=2.0, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if int(num_centers) < 2:
            raise ValueError(f"num_centers must be >= 2. Received: num_centers={num_centers}")
        if float(sigma) <= 0:
            raise ValueError(f"sigma must be positive. Received: sigma={sigma}")
        self.num_centers = int(num_centers)
        self.sigma = float(sigma)
        self.init_range = float(init_range)

    def build(self, input_shape):
        lo, hi = -self.init_range, self.init_range
        step = (hi - lo) / (self.num_centers - 1)
        self.centers = self.add_weight(
            name="centers",
            shape=(self.num_centers,),
            initializer=keras.initializers.Constant(
                [lo + i * step for i in range(self.num_centers)]
            ),
            dtype="float32",
        )

    def call(self, y):
        """Returns dict(z=hard values, symbols=int32 indices, assignment=w [..., L])."""
        y = tf.cast(y, tf.float32)
        centers = tf.convert_to_tensor(self.centers)
        z, symbols = quantize(y, centers, self.sigma)
        return {
            "z": z,
            "symbols": symbols,
            "assignment": soft_assignment(y, centers, self.sigma),
        }

    def compute_output_spec(self, y):
        shape = tuple(y.shape)
        return {
            "z": keras.KerasTensor(shape, dtype="float32"),
            "symbols": keras.KerasTensor(shape, dtype="int32"),
            "assignment": keras.KerasTensor(shape + (self.num_centers,), dtype="float32"),
        }

    def get_config(self):
        config = super().get_config()
        config.update(num_centers=self.num_centers, sigma=self.sigma, init_range=self.init_range)
        return config
