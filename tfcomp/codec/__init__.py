"""The learned compression codec: encoder, quantizer, rate, decoder (paper Section 3, A.1).

Its settings (the three operating points and the training budget) are `tfcomp.configs`'s.
"""

from tfcomp.codec.losses import compression_loss
from tfcomp.codec.model import Codec, Decoder, Encoder
from tfcomp.codec.quantizer import Quantizer, quantize

__all__ = ["Codec", "Decoder", "Encoder", "Quantizer", "compression_loss", "quantize"]
