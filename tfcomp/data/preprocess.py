"""Pure per-example preprocessing ops, usable eagerly and inside tf.data."""

import tensorflow as tf


def ensure_min_size(image, size):
    """Upscales (bilinear) an image whose shorter side is below `size` so that it is `size`."""
    shape = tf.shape(image)
    short = tf.minimum(shape[0], shape[1])
    scale = tf.maximum(1.0, tf.cast(size, tf.float32) / tf.cast(short, tf.float32))
    new_h = tf.cast(tf.math.ceil(tf.cast(shape[0], tf.float32) * scale), tf.int32)
    new_w = tf.cast(tf.math.ceil(tf.cast(shape[1], tf.float32) * scale), tf.int32)
    resized = tf.image.resize(image, [new_h, new_w], method="bilinear")
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), image.dtype)
    return tf.cond(scale > 1.0, lambda: resized, lambda: image)


def random_crop(image, size, seed=None):
    """A random size x size crop (upscaling first if the image is smaller)."""
    image = ensure_min_size(image, size)
    return tf.image.random_crop(image, [size, size, tf.shape(image)[-1]], seed=seed)


def center_crop(image, size):
    """The central size x size crop (upscaling first if the image is smaller)."""
    image = ensure_min_size(image, size)
    shape = tf.shape(image)
    top = (shape[0] - size) // 2
    left = (shape[1] - size) // 2
    return image[top : top + size, left : left + size, :]


def random_mirror(image, seed=None):
    """Flips left-right with probability 1/2."""
    return tf.image.random_flip_left_right(image, seed=seed)
