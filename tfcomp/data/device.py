"""The codec's part of a model input, run inside the compiled step on the accelerator.

Input pipelines (`tf.data`, on the host CPU) only read, decode and augment bytes, pixels,
symbols or z; the encoder and the decoder never run there (DESIGN.md, rules for scale: a codec
in `tf.data` starves GPUs). What reaches the step, per input mode and source:

    source   mode           the batch holds            the step computes
    images   rgb            RGB crops                  (nothing)
    images   compressed     uint8 images S x S         z = encoder(images), then crop / mirror z
    images   reconstructed  uint8 images S x S         x = decoder(encoder(images)), crop / mirror
    store    compressed     z (entropy-decoded)        crop / mirror z
    store    reconstructed  z (entropy-decoded)        x = decoder(z), crop / mirror

Crops are A.4's (random 224 x 224 of the 256 x 256 image, or 28 x 28 of its 32 x 32 x C z,
with a random mirror; centre crops for evaluation), made per example on the device. The codec
runs in float32 in inference mode whatever the global policy (a float16 encoder would move
symbols): z from the store and z of the in-step encoder are the same numbers, and
reconstructions are rounded and clipped to 8 bits as a decoded file would be.
"""

import tensorflow as tf

from tfcomp.codec import rate


def crop_batch(x, size, offsets):
    """x [N, H, W, C] -> [N, size, size, C], example i cut at offsets[i] = (top, left)."""
    rows = offsets[:, 0:1] + tf.range(size)
    cols = offsets[:, 1:2] + tf.range(size)
    x = tf.gather(x, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def random_offsets(batch, height, width, size, step=1):
    """[N, 2] random (top, left) of size x size windows in height x width, multiples of step."""
    tops = tf.random.uniform([batch], 0, (height - size) // step + 1, dtype=tf.int32) * step
    lefts = tf.random.uniform([batch], 0, (width - size) // step + 1, dtype=tf.int32) * step
    return tf.stack([tops, lefts], axis=1)


def center_offsets(batch, height, width, size):
    offset = tf.stack([(height - size) // 2, (width - size) // 2])
    return tf.tile(offset[None], [batch, 1])


def mirror_batch(tensors, flips):
    """Flips each [N, H, W, ...] tensor left-right where flips [N] is True."""
    out = []
    for t in tensors:
        mask = tf.reshape(flips, [-1] + [1] * (t.shape.rank - 1))
        out.append(tf.where(mask, tf.reverse(t, [2]), t))
    return out


def crop_and_mirror(x, size, training, grid=1):
    """A.4's augmentation of a batch: random crop (at multiples of `grid`) + mirror (training)
    or the centre crop."""
    shape = tf.shape(x)
    if not training:
        return crop_batch(x, size, center_offsets(shape[0], shape[1], shape[2], size))
    x = crop_batch(x, size, random_offsets(shape[0], shape[1], shape[2], size, grid))
    return mirror_batch([x], tf.random.uniform([shape[0]]) < 0.5)[0]


def to_8_bits(x_hat):
    """Reconstructions as a decoded file holds them: rounded, clipped to 0..255 (float32)."""
    return tf.clip_by_value(tf.round(tf.cast(x_hat, tf.float32)), 0.0, 255.0)


def decoder_8_bits(codec):
    """A compiled z [N, h, w, C] -> uint8 reconstructions [N, 8h, 8w, 3] as a decoded file
    holds them, for decoding a store once before training (float32, inference mode)."""
    return tf.function(
        lambda z: tf.cast(to_8_bits(codec.decode(z)), tf.uint8), reduce_retracing=True
    )


class CodecInputs:
    """The in-step part of a classifier's input (see the module docstring).

    `input_mode` rgb | compressed | reconstructed; `from_store`: batches hold z, else uint8
    images; `crop_size` in pixels (z crops are 1/8); `crop_grid`: random crops start at its
    multiples, in the model input's units. Call it on a batch inside the step.
    """

    def __init__(self, input_mode, codec, crop_size, from_store, crop_grid=1):
        if input_mode != "rgb" and codec is None:
            raise ValueError(f"input mode {input_mode!r} needs a codec")
        self.input_mode, self.codec, self.from_store = input_mode, codec, from_store
        self.crop_size, self.crop_grid = crop_size, crop_grid

    @property
    def size(self):
        """Side of the model input: crop_size, or crop_size / 8 for z."""
        compressed = self.input_mode == "compressed"
        return self.crop_size // rate.SUBSAMPLING if compressed else self.crop_size

    def latent(self, x):
        return x if self.from_store else self.codec.encode(x)[0]

    def __call__(self, x, training):
        if self.input_mode == "rgb":
            return x  # cropped in the pipeline: no codec involved
        z = self.latent(x)
        if self.input_mode == "compressed":
            return crop_and_mirror(z, self.size, training, self.crop_grid)
        x = to_8_bits(self.codec.decode(z))
        return crop_and_mirror(x, self.size, training, self.crop_grid)


# z pixels of context kept around a segmentation crop for decoding it: past the decoder's
# receptive field (radius 7 in z pixels: 5x5 up at z's resolution, six 3x3 at twice it, two 5x5
# up), so the centre of a decoded crop equals the same window of the whole decoded image.
DECODER_MARGIN = 8


class SegmentationInputs:
    """The in-step part of a segmenter's input: (x, mask) -> (model input, mask).

    From images the batch holds uint8 crops (or, evaluating, one whole image) and their masks.
    From a store it holds z, and masks at 8x z's size; a reconstructed-mode training batch's z
    keeps `DECODER_MARGIN` extra z pixels on each side (the pipeline cut it so), decoded here and
    cut away, then the crop and its mask are mirrored together.
    """

    def __init__(self, input_mode, codec, from_store):
        if input_mode != "rgb" and codec is None:
            raise ValueError(f"input mode {input_mode!r} needs a codec")
        self.input_mode, self.codec, self.from_store = input_mode, codec, from_store

    def __call__(self, x, mask, training):
        if self.input_mode == "rgb":
            return x, mask
        z = x if self.from_store else self.codec.encode(x)[0]
        if self.input_mode == "compressed":
            return z, mask
        x_hat = to_8_bits(self.codec.decode(z))
        if not (training and self.from_store):
            return x_hat[:, : tf.shape(mask)[1], : tf.shape(mask)[2]], mask
        margin = DECODER_MARGIN * rate.SUBSAMPLING
        size = tf.shape(mask)[1]
        x_hat = x_hat[:, margin : margin + size, margin : margin + size]
        return tuple(mirror_batch([x_hat, mask], tf.random.uniform([tf.shape(x)[0]]) < 0.5))
