"""Compiled predictors: a trained network as one function of constants, for serving and batches.

A Keras model calls its layers with variable weights; for inference that costs twice on this
kind of CPU: batch norm runs as its own ops after every convolution, and oneDNN reorders every
variable weight into its blocked layout on every call (17 ms of cResNet-51's 50 ms at batch 1
in bfloat16, README). `Predictor` instead:

  * folds each batch norm into the convolution before it (kernel * s, bias beta - mean * s with
    s = gamma / sqrt(var + eps): what inference computes, exactly, up to float rounding);
  * writes every weight into the traced graph as a constant (reordered once, then cached);
  * computes in bfloat16 when asked (`precision="bfloat16"`, the default where the CPU has
    AVX-512 BF16 or AMX; GPUs: float32 unless asked), logits returned in float32.

It covers the registry's networks: ResNet / cResNet classifiers (-> logits [N, K]) and DeepLab
segmenters (-> logits [N, h', w', K]). One compiled function per predictor takes any batch size
and input size (one trace, `input_signature` with unknown dimensions).
"""

import numpy as np
import tensorflow as tf

from tfcomp import hardware
from tfcomp.nets.deeplab import DeepLab
from tfcomp.nets.resnet import ResNet


def default_precision():
    return (
        "bfloat16"
        if hardware.cpu_has_native_bfloat16() and not tf.config.list_physical_devices("GPU")
        else "float32"
    )


def fold(conv, bn):
    """(kernel, bias) numpy of `conv` (no bias) followed by `bn`, in inference mode."""
    kernel = conv.kernel.numpy().astype(np.float64)
    gamma = bn.gamma.numpy().astype(np.float64) if bn.scale else 1.0
    beta = bn.beta.numpy().astype(np.float64) if bn.center else 0.0
    mean = bn.moving_mean.numpy().astype(np.float64)
    var = bn.moving_variance.numpy().astype(np.float64)
    scale = gamma / np.sqrt(var + bn.epsilon)
    return (kernel * scale).astype(np.float32), (beta - mean * scale).astype(np.float32)


def _conv(x, weights, stride=1, dilation=1):
    kernel, bias = weights
    y = tf.nn.conv2d(x, kernel, strides=stride, padding="SAME", dilations=dilation)
    return tf.nn.bias_add(y, bias)


class Predictor:
    """A classifier's or segmenter's forward pass with folded, constant weights (see module)."""

    def __init__(self, model, precision=None):
        self.precision = precision or default_precision()
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be float32 or bfloat16. Received: {precision}")
        self.segmenter = isinstance(model, DeepLab)
        backbone = model.backbone if self.segmenter else model
        if not isinstance(backbone, ResNet):
            raise ValueError(f"no predictor for {type(model).__name__}")
        self.input_channels = backbone.input_channels
        self._arrays = self._collect(model, backbone)
        dtype = tf.bfloat16 if self.precision == "bfloat16" else tf.float32
        self.dtype = dtype
        self._function = tf.function(
            self._forward,
            input_signature=[tf.TensorSpec([None, None, None, self.input_channels], tf.float32)],
        )

    def _collect(self, model, backbone):
        """The folded weights as numpy arrays, in the order `_forward` reads them."""
        arrays = {"mean": backbone.input_mean.numpy(), "scale": backbone.input_scale}
        if backbone.root:
            arrays["root"] = fold(backbone.root_conv, backbone.root_bn)
        arrays["units"] = [
            {
                "stride": unit.stride,
                "dilation": unit.dilation,
                "c1": fold(unit.conv1, unit.bn1),
                "c2": fold(unit.conv2, unit.bn2),
                "c3": fold(unit.conv3, unit.bn3),
                "shortcut": fold(unit.shortcut, unit.shortcut_bn) if unit.projection else None,
            }
            for unit in backbone.units
        ]
        arrays["root_pool"] = backbone.root
        if self.segmenter:
            arrays["aspp"] = [
                (b.kernel.numpy(), b.bias.numpy(), b.dilation_rate[0]) for b in model.aspp.branches
            ]
        else:
            arrays["fc"] = (model.fc.kernel.numpy(), model.fc.bias.numpy())
        return arrays

    def _constant(self, weights, dtype=None):
        """Graph constants (made while tracing, so that they are part of the graph)."""
        kernel, bias = weights
        dtype = dtype or self.dtype
        return tf.cast(tf.constant(kernel), dtype), tf.cast(tf.constant(bias), dtype)

    def _forward(self, x):
        a = self._arrays
        x = (x - tf.constant(a["mean"])) * a["scale"]
        x = tf.cast(x, self.dtype)
        if "root" in a:
            x = tf.nn.relu(_conv(x, self._constant(a["root"]), stride=2))
            x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        for unit in a["units"]:
            shortcut = x
            if unit["shortcut"] is not None:
                shortcut = _conv(x, self._constant(unit["shortcut"]), stride=unit["stride"])
            y = tf.nn.relu(_conv(x, self._constant(unit["c1"]), stride=unit["stride"]))
            y = tf.nn.relu(_conv(y, self._constant(unit["c2"]), dilation=unit["dilation"]))
            y = _conv(y, self._constant(unit["c3"]))
            x = tf.nn.relu(y + shortcut)
        # The heads compute in float32, as the Keras models' (their layers are float32).
        x = tf.cast(x, tf.float32)
        if self.segmenter:
            branches = [
                _conv(x, self._constant((k, b), tf.float32), dilation=rate)
                for k, b, rate in a["aspp"]
            ]
            return tf.add_n(branches)
        kernel, bias = self._constant(a["fc"], tf.float32)
        return tf.matmul(tf.reduce_mean(x, axis=[1, 2]), kernel) + bias

    def __call__(self, x):
        """Logits (float32) of a batch of inputs [N, H, W, C] (any N, H, W)."""
        return self._function(tf.convert_to_tensor(x, tf.float32))
