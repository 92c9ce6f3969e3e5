"""Pure per-example preprocessing ops, usable eagerly and inside tf.data.

The random ones are stateless: they take a seed (an int32/int64 tensor of shape [2]) and give the
same output for the same seed. Inside tf.data, `with_seeds` pairs every element with its own
seed, drawn from one stream that follows TF's global seed (`tf.random.set_seed`): a parallel
map then crops and mirrors each element by its place in the stream, so the data a run sees
depends on the seed alone. Stateful random ops in a parallel map share one generator between
the map's threads, and which element gets which draw changes from run to run.
"""

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


def with_seeds(ds):
    """(element, seed) pairs: seed is a [2] int64 tensor for the stateless random ops, one per
    element, from a stream seeded by TF's global seed."""
    return tf.data.Dataset.zip(ds, tf.data.Dataset.random().batch(2))


def split_seed(seed, count):
    """`count` independent [2] seeds from one (a crop and a mirror draw their own)."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def random_crop(image, size, seed, grid=1):
    """A random size x size crop (upscaling first if the image is smaller), starting at
    multiples of `grid` pixels (1: anywhere)."""
    image = ensure_min_size(image, size)
    if grid == 1:
        return tf.image.stateless_random_crop(image, [size, size, tf.shape(image)[-1]], seed=seed)
    shape = tf.shape(image)
    top_seed, left_seed = split_seed(seed, 2)
    top = tf.random.stateless_uniform([], top_seed, 0, (shape[0] - size) // grid + 1, tf.int32)
    left = tf.random.stateless_uniform([], left_seed, 0, (shape[1] - size) // grid + 1, tf.int32)
    crop = image[top * grid : top * grid + size, left * grid : left * grid + size, :]
    crop.set_shape([size, size, image.shape[-1]])  # static, as stateless_random_crop's is
    return crop


def center_crop(image, size):
    """The central size x size crop (upscaling first if the image is smaller)."""
    image = ensure_min_size(image, size)
    shape = tf.shape(image)
    top = (shape[0] - size) // 2
    left = (shape[1] - size) // 2
    return image[top : top + size, left : left + size, :]


def random_mirror(image, seed):
    """Flips left-right with probability 1/2."""
    return tf.image.stateless_random_flip_left_right(image, seed=seed)


def random_crop_and_mirror(image, size, seed, grid=1):
    """`random_crop` (on `grid`) then `random_mirror`, each with its own seed split from
    `seed`."""
    crop_seed, mirror_seed = split_seed(seed, 2)
    return random_mirror(random_crop(image, size, crop_seed, grid), mirror_seed)
