"""Multiply-accumulate counts ("FLOPs" in the paper, Section 3.1 and Table 1) of Keras models.

The count is read off the model itself: every convolution and dense layer that runs while the
model is applied once to a zero input of the given shape is recorded with its actual input and
output shapes. Per layer (batch 1, groups = 1):

    Conv2D            out_h * out_w * k_h * k_w * c_in * c_out
    Conv2DTranspose   in_h * in_w * k_h * k_w * c_in * c_out  (each input pixel scatters a kernel)
    DepthwiseConv2D   out_h * out_w * k_h * k_w * c_in * depth_multiplier
    Dense             prod(input dims except the last) * d_in * d_out

Biases, normalisation, activations, pooling and additions are not counted, as in He et al. (2015)
and the paper.
"""

import contextlib
import functools
import math

import keras
import numpy as np


def _conv_macs(layer, in_shape, out_shape):
    k_h, k_w = layer.kernel_size
    c_in = in_shape[-1]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return out_shape[1] * out_shape[2] * k_h * k_w * c_in * layer.depth_multiplier
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return in_shape[1] * in_shape[2] * k_h * k_w * c_in * layer.filters
    return out_shape[1] * out_shape[2] * k_h * k_w * (c_in // layer.groups) * layer.filters


def _dense_macs(layer, in_shape, out_shape):
    return math.prod(in_shape[1:-1]) * in_shape[-1] * out_shape[-1]


# Order matters: Conv2DTranspose and DepthwiseConv2D share a base class with Conv2D.
_COUNTED = (
    (keras.layers.Conv2DTranspose, _conv_macs),
    (keras.layers.DepthwiseConv2D, _conv_macs),
    (keras.layers.Conv2D, _conv_macs),
    (keras.layers.Dense, _dense_macs),
)


@contextlib.contextmanager
def _record_layer_calls(records):
    """Temporarily wraps `keras.layers.Layer.__call__` to record the counted layers' shapes."""
    original = keras.layers.Layer.__call__

    def recording_call(self, *args, **kwargs):
        outputs = original(self, *args, **kwargs)
        for cls, counter in _COUNTED:
            if isinstance(self, cls):
                records.append((self, tuple(args[0].shape), tuple(outputs.shape), counter))
                break
        return outputs

    keras.layers.Layer.__call__ = recording_call
    try:
        yield
    finally:
        keras.layers.Layer.__call__ = original


def layer_macs(model, input_shape, **call_kwargs):
    """[(layer path, MACs)] for one example of `input_shape` (without the batch axis)."""
    records = []
    inputs = np.zeros((1, *input_shape), dtype="float32")
    # One call, which may also build the model: a layer Keras calls more than once while
    # building (a symbolic pass) is counted once, with the shapes of its last call.
    with _record_layer_calls(records):
        model(inputs, **call_kwargs)
    last = {id(layer): (layer, i, o, c) for layer, i, o, c in records}
    return [
        (layer.path, int(counter(layer, in_shape, out_shape)))
        for layer, in_shape, out_shape, counter in last.values()
    ]


def count_macs(model, input_shape, **call_kwargs):
    """Total multiply-accumulates of `model` on one input of `input_shape` (no batch axis)."""
    return sum(macs for _, macs in layer_macs(model, input_shape, **call_kwargs))


# The codec's counts of Section 3.1 (C = 32 at 224 x 224); its decoder's layout is not given.
CODEC_PAPER_MACS = {"encoder": 3.56e9, "decoder": 2.85e9}


@functools.cache
def _paper_codec():
    from tfcomp.codec import Codec
    from tfcomp.nets.registry import PAPER_LATENT_CHANNELS

    return Codec(channels=PAPER_LATENT_CHANNELS)


def _codec_part(part):
    return getattr(_paper_codec(), part)


def flop_table(names=None):
    """[{name, input_shape, macs, paper_macs}]: the codec's parts and every registered network
    at the paper's input sizes (`NetworkSpec.paper_input_shape`; 21 VOC classes when dilated),
    and the decoder at the segmentation input size (`decoder_320`)."""
    from tfcomp.nets import registry

    c = registry.PAPER_LATENT_CHANNELS
    entries = {
        "encoder": (lambda: _codec_part("encoder"), (224, 224, 3), CODEC_PAPER_MACS["encoder"]),
        "decoder": (lambda: _codec_part("decoder"), (28, 28, c), CODEC_PAPER_MACS["decoder"]),
        "decoder_320": (lambda: _codec_part("decoder"), (40, 40, c), None),
    }
    for name in registry.names():
        spec = registry.get(name)
        classes = 21 if spec.dilated else 1000
        entries[name] = (
            lambda name=name, classes=classes: registry.build(name, classes),
            spec.paper_input_shape(),
            spec.paper_macs,
        )
    rows = []
    for name in names or entries:
        build, shape, paper = entries[name]
        rows.append(
            {
                "name": name,
                "input_shape": list(shape),
                "macs": count_macs(build(), shape),
                "paper_macs": paper,
            }
        )
    return rows
