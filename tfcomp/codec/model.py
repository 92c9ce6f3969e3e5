"""The compressive autoencoder of Theis et al. (2017) as used by the paper (Appendix A.1).

    x uint8/float [0, 255], h x w x 3
      | normalise: (x - mean) / std per channel; pad bottom/right to a multiple of 8
      v
    Encoder g_a: conv 5x5/2 64 -> conv 5x5/2 128 -> 3 x [3x3 128 -> 3x3 128, + skip] -> conv 5x5/2 C
      v  y: ceil(h/8) x ceil(w/8) x C
    Quantizer: z = centers[symbols], symbols in [0, L)      (hard forward, soft backward)
      v
    Decoder g_s: deconv 5x5/2 128 -> 3 residual units -> deconv 5x5/2 64 -> deconv 5x5/2 3
      v  de-normalise, crop back to h x w
    x_hat (float, pixel units, not clipped)

Any h x w works, down to 1 x 1: the input is padded on the bottom and right edges by mirroring
(symmetric reflection, the edge pixel repeated, as `tf.pad` mode SYMMETRIC; repeated for sides
shorter than the padding) up to the next multiple of 8, and the reconstruction is cropped back to
h x w. At 224 x 224 the encoder costs 3.557e9 multiply-accumulates with C = 32, the paper's
3.56e9; the mirrored decoder costs the same (the paper's decoder, whose layout it does not give,
2.85e9).
"""

import keras
import tensorflow as tf

from tfcomp import layers
from tfcomp.codec import rate
from tfcomp.codec.entropy_model import EntropyModel
from tfcomp.codec.quantizer import Quantizer

# Per-channel statistics of ImageNet RGB pixels (0..255), the usual ones for mean centering.
RGB_MEAN = (123.68, 116.78, 103.94)
RGB_STD = (58.4, 57.1, 57.4)


def _mirror_indices(size, multiple):
    """Indices 0..padded-1 into a side of `size`, reflected symmetrically with period 2 * size."""
    padded = size + (-size) % multiple
    index = tf.range(padded) % (2 * size)
    return tf.where(index < size, index, 2 * size - 1 - index)


def pad_to_multiple(x, multiple=rate.SUBSAMPLING):
    """Pads NHWC `x` at the bottom/right by mirroring so that H and W are multiples of 8.

    Equal to `tf.pad(..., mode="SYMMETRIC")` where that applies (padding no longer than the
    side); sides shorter than the padding (1 to 3 pixels) are mirrored again and again.
    """
    shape = _shape(x)
    x = tf.gather(x, _mirror_indices(shape[1], multiple), axis=1)
    return tf.gather(x, _mirror_indices(shape[2], multiple), axis=2)


def _shape(x):
    """x's shape, as Python ints where they are known (static shapes keep XLA compiling)."""
    dynamic = tf.shape(x)
    return [d if d is not None else dynamic[i] for i, d in enumerate(x.shape)]


@keras.saving.register_keras_serializable(package="tfcomp")
class ResidualUnit(keras.layers.Layer):
    """x + conv3x3(relu(conv3x3(x))), the residual unit of Theis et al. (2017)."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.conv1 = layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv1")
        self.conv2 = layers.Conv2D(filters, 3, padding="same", name="conv2")

    def call(self, x):
        return x + self.conv2(self.conv1(x))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def _residual_units(count):
    return [ResidualUnit(128, name=f"res{i}") for i in range(count)]


@keras.saving.register_keras_serializable(package="tfcomp")
class Encoder(keras.Model):
    """g_a: normalised image (h, w multiples of 8) -> y of shape h/8 x w/8 x C."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.stack = [
            layers.Conv2D(64, 5, strides=2, padding="same", activation="relu", name="down1"),
            layers.Conv2D(128, 5, strides=2, padding="same", activation="relu", name="down2"),
            *_residual_units(3),
            layers.Conv2D(self.channels, 5, strides=2, padding="same", name="down3"),
        ]

    def call(self, x):
        for layer in self.stack:
            x = layer(x)
        return x

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="tfcomp")
class Decoder(keras.Model):
    """g_s: z of shape h/8 x w/8 x C -> normalised image h x w x 3 (mirror of the encoder)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.stack = [
            layers.Conv2DTranspose(
                128, 5, strides=2, padding="same", activation="relu", name="up1"
            ),
            *_residual_units(3),
            layers.Conv2DTranspose(64, 5, strides=2, padding="same", activation="relu", name="up2"),
            layers.Conv2DTranspose(3, 5, strides=2, padding="same", name="up3"),
        ]

    def call(self, z):
        for layer in self.stack:
            z = layer(z)
        return z


@keras.saving.register_keras_serializable(package="tfcomp")
class Codec(keras.Model):
    """Encoder + quantizer + decoder. `call` returns a dict with fixed keys:

    x_hat        float32 [N, h, w, 3] reconstruction in pixel units (not clipped)
    y            float32 [N, ceil(h/8), ceil(w/8), C] encoder output
    z            float32, same shape: quantized values (centers[symbols])
    symbols      int32, same shape, in [0, num_centers)
    assignment   float32 [..., L] soft assignment w_j(y)
    entropy      scalar, differentiable soft-histogram entropy, bits/symbol
    entropy_hard scalar, entropy of the chosen symbols' histogram, bits/symbol
    bpp_estimate scalar, estimated bits per pixel = entropy * C / 64 (not a file size: the
                 real rate, `bpp_real`, comes from the entropy coder's bytes)
    """

    def __init__(self, channels=32, num_centers=6, sigma=1.0, **kwargs):
        super().__init__(**kwargs)
        if int(channels) < 1:
            raise ValueError(f"channels must be >= 1. Received: channels={channels}")
        self.channels = int(channels)
        self.num_centers = int(num_centers)
        self.sigma = float(sigma)
        self.encoder = Encoder(self.channels, name="encoder")
        self.quantizer = Quantizer(self.num_centers, self.sigma, name="quantizer")
        self.decoder = Decoder(name="decoder")
        # Integer per-channel tables for real entropy coding, fitted after training.
        self.entropy_model = EntropyModel(self.channels, self.num_centers, name="entropy_model")
        # Every weight exists from construction on (an 8x8 pass costs little), so that encode()
        # alone, saving, or restoring a checkpoint never meets an unbuilt part.
        z = self.quantizer(self.analysis(tf.zeros([1, 8, 8, 3])))["z"]
        self.decoder(tf.cast(z, self.compute_dtype))
        self.built = True

    @staticmethod
    def normalize(x):
        return (tf.cast(x, tf.float32) - RGB_MEAN) / RGB_STD

    @staticmethod
    def denormalize(x):
        return tf.cast(x, tf.float32) * RGB_STD + RGB_MEAN

    def analysis(self, x):
        """Image [N, h, w, 3] in 0..255 -> y (float32); pads h, w to multiples of 8."""
        x = pad_to_multiple(self.normalize(x))
        return tf.cast(self.encoder(tf.cast(x, self.compute_dtype)), tf.float32)

    def encode(self, x):
        """Image -> (z, symbols). No decoder runs: the entry point for understanding."""
        quantized = self.quantizer(self.analysis(x))
        return quantized["z"], quantized["symbols"]

    def dequantize(self, symbols):
        """Symbols -> z by a table look-up in the learned centers."""
        return tf.gather(tf.convert_to_tensor(self.quantizer.centers), symbols)

    def decode(self, z, height=None, width=None):
        """z -> reconstruction in pixel units, cropped to height x width when given."""
        x_hat = self.denormalize(self.decoder(tf.cast(z, self.compute_dtype)))
        if height is not None:
            x_hat = x_hat[:, :height, :width, :]
        return x_hat

    def call(self, x, training=False):
        shape = _shape(x)
        y = self.analysis(x)
        quantized = self.quantizer(y)
        entropy = rate.soft_entropy(quantized["assignment"])
        return {
            "x_hat": self.decode(quantized["z"], shape[1], shape[2]),
            "y": y,
            "z": quantized["z"],
            "symbols": quantized["symbols"],
            "assignment": quantized["assignment"],
            "entropy": entropy,
            "entropy_hard": rate.hard_entropy(quantized["symbols"], self.num_centers),
            "bpp_estimate": rate.bits_per_pixel(entropy, self.channels),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "num_centers": self.num_centers,
            "sigma": self.sigma,
        }
