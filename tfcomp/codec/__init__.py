"""The learned compression codec: encoder, quantizer, rate, decoder (paper Section 3, A.1)."""

from tfcomp.codec.losses import compression_loss
from tfcomp.codec.model import Codec, Decoder, Encoder
from tfcomp.codec.presets import OPERATING_POINTS, get_operating_point
from tfcomp.codec.quantizer import Quantizer, quantize

__all__ = [
    "Codec",
    "Decoder",
    "Encoder",
    "OPERATING_POINTS",
    "Quantizer",
    "compression_loss",
    "get_operating_point",
    "quantize",
]
