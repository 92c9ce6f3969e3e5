"""Images <-> `.tfc` bytes with a trained codec, and bytes -> latent z without decoding.

    compress:      image -> encoder -> quantizer -> symbols -> range coder -> bytes
    decode_latent: bytes -> range decoder -> symbols -> z = centers[symbols]   (no decoder)
    decompress:    bytes -> z -> decoder -> image

`fit_entropy_model` counts a dataset's symbols per channel and stores the integer tables in the
codec, which changes its model id: fit once, then compress.
"""

import numpy as np
import tensorflow as tf

from tfcomp import memory
from tfcomp.codec import bitstream, entropy_model


class CodecFiles:
    """A codec bound to its model id and coding tables (computed once)."""

    def __init__(self, codec):
        self.codec = codec
        self.model_id = bitstream.model_id(codec)
        self.probabilities = codec.entropy_model.probabilities()
        self.centers = codec.quantizer.centers.numpy()
        # One compiled encoder for every batch and image size (a single trace).
        self._symbols = tf.function(
            lambda images: codec.encode(images)[1],
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)],
        )

    def compress_batch(self, images):
        """uint8 N x H x W x 3 (one size) -> N `.tfc` files' bytes, one encoder call."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 N x H x W x 3 images, got {images.dtype} {images.shape}"
            )
        height, width = images.shape[1:3]
        bitstream.check_image_size(height, width)  # before the encoder runs
        memory.check("encode", height, width, len(images))
        symbols = self._symbols(tf.constant(images)).numpy()
        return [
            bitstream.pack(
                s, height, width, self.codec.num_centers, self.probabilities, self.model_id
            )
            for s in symbols
        ]

    def compress(self, image):
        """uint8 H x W x 3 -> bytes of a `.tfc` file."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected an H x W x 3 image, got shape {image.shape}")
        return self.compress_batch(image[None].astype(np.uint8))[0]

    def decode_symbols(self, data):
        """(header dict, symbols int32 [h', w', C])."""
        return bitstream.unpack(
            data, self.codec.num_centers, self.codec.channels, self.probabilities, self.model_id
        )

    def decode_latent(self, data):
        """(header, z float32 [h', w', C]): a table look-up, no decoder network."""
        header, symbols = self.decode_symbols(data)
        return header, self.centers[symbols]

    def decompress(self, data):
        """bytes -> uint8 H x W x 3 reconstruction."""
        header = bitstream.read_header(data)
        memory.check("decode", header["height"], header["width"])  # before any decoding
        header, z = self.decode_latent(data)
        return self.reconstruct(z, header)

    def reconstruct(self, z, header):
        """z [h', w', C] of a file with this header -> its uint8 H x W x 3 reconstruction."""
        x_hat = self.codec.decode(tf.constant(z[None]), header["height"], header["width"])
        return np.clip(np.round(x_hat[0].numpy()), 0, 255).astype(np.uint8)


def fit_entropy_model(codec, image_batches):
    """Fits the per-channel tables on an iterable of uint8 NHWC batches; returns the counts."""
    counts = np.zeros((codec.channels, codec.num_centers), np.int64)
    for batch in image_batches:
        _, symbols = codec.encode(tf.convert_to_tensor(batch))
        counts += entropy_model.count_symbols(symbols.numpy(), codec.num_centers)
    codec.entropy_model.fit(counts)
    return counts
