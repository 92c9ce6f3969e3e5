"""Keras convolutions whose bias gradient is summed in float32 when they compute in 16 bits.

Keras's `Conv2D` / `Conv2DTranspose` add their bias with `ops.add`, which the TensorFlow backend
turns into `tf.nn.bias_add`; TensorFlow's CPU kernel of its gradient (`BiasAddGrad`) sums a
bfloat16 gradient over batch and pixels in bfloat16, so the sum stops growing once its terms fall
below its last bit (tensorflow/tensorflow#86378). Measured on 2.21 (tests/test_layers.py): a
3x3 convolution's bias gradient over 8 x 32 x 32 positions is 60% off under mixed_bfloat16,
over 8 x 128 x 128 positions 95%. These layers add the bias with `add_bias`, whose gradient is
that sum in float32; in float32 they run the very ops Keras's layers run.
"""

import keras
import tensorflow as tf

LOW_PRECISION = (tf.bfloat16, tf.float16)


def add_bias(x, bias):
    """`tf.nn.bias_add(x, bias)` (NHWC); in bfloat16 / float16 its gradient with respect to the
    bias is summed in float32 and rounded once."""
    bias = tf.cast(bias, x.dtype)  # a variable: read as the layer's autocast reads it
    if x.dtype not in LOW_PRECISION:
        return tf.nn.bias_add(x, bias)
    return _add_bias_summed_in_float32(x, bias)


@tf.custom_gradient
def _add_bias_summed_in_float32(x, bias):
    def grad(dy):
        axes = list(range(len(dy.shape) - 1))
        return dy, tf.cast(tf.reduce_sum(tf.cast(dy, tf.float32), axes), bias.dtype)

    return tf.nn.bias_add(x, bias), grad


class _BiasInFloat32:
    """`call` of a Keras convolution (channels last) with the bias added by `add_bias`."""

    def linear(self, inputs):
        raise NotImplementedError

    def call(self, inputs):
        if self.data_format != "channels_last":
            raise ValueError(f"{self.name}: channels_last only, not {self.data_format}")
        outputs = self.linear(inputs)
        if self.use_bias:
            outputs = add_bias(outputs, self.bias)
        return outputs if self.activation is None else self.activation(outputs)


@keras.saving.register_keras_serializable(package="tfcomp")
class Conv2D(_BiasInFloat32, keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose bias gradient is summed in float32 (module docstring)."""

    def linear(self, inputs):
        return self.convolution_op(inputs, self.kernel)


@keras.saving.register_keras_serializable(package="tfcomp")
class Conv2DTranspose(_BiasInFloat32, keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` whose bias gradient is summed in float32."""

    def linear(self, inputs):
        return keras.ops.conv_transpose(
            inputs,
            self.kernel,
            strides=list(self.strides),
            padding=self.padding,
            output_padding=self.output_padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
