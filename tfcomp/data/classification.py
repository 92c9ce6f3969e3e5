"""Labelled image sources and the three input modes of the classifiers (paper Section 4,
Appendix A.4).

Sources (the same `--dataset` strings as everywhere):
    default        the embedded labelled images (`tfcomp.data.synthetic`): 10 shape classes
                   composited onto scikit-image's photographs, 64 x 64, offline everywhere
    folder:PATH    PATH/<split>/<class>/*.jpg (e.g. imagenette2), classes = sorted folders
    NAME           a TFDS classification dataset with 'image' and 'label' features, e.g.
                   imagenet2012 from the official tars in `manual_dir` (the real builder)

Every example goes through one pipeline, which never runs a network (the codec runs in the
step, on the accelerator: `tfcomp.data.device`):

    uint8 image -> resize shorter side to `resize` and centre-crop resize x resize
      -> rgb:            train: random crop (crop_size) + random mirror; eval: centre crop
         reconstructed,  the whole resize x resize image; the step encodes (and decodes) it,
         compressed:     then crops (crop_size, or crop_size/8 of z) and mirrors on the device
    z read from a store (`store:DIR`): the whole stored z; the step crops (or decodes) it

With the paper's sizes (resize 256, crop 224) the latent is 32 x 32 x C and the crops 28 x 28.
`cache` keeps the resized images (or z) in memory; it suits data that fits in memory
(Imagenette), not ImageNet.
"""

import os

import tensorflow as tf

from tfcomp.codec import rate
from tfcomp.data import preprocess, sources, synthetic

INPUT_MODES = ("rgb", "reconstructed", "compressed")


def folder_classes(root):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise sources.DataError(f"no class folders below {root!r} (expected ROOT/<class>/*.jpg)")
    return classes


def _synthetic_split(split):
    return "train" if split == "train" else "val"


def folder_examples(path, split):
    """(paths, labels, class names) of PATH/<split>/<class>/*; every image checked readable."""
    root = sources.folder_split_root(path, split)
    classes = folder_classes(root)
    paths, labels = [], []
    for index, name in enumerate(classes):
        files = sources.list_images(os.path.join(root, name))
        paths.extend(files)
        labels.extend([index] * len(files))
    sources.check_readable(paths)
    return paths, labels, classes


def labelled_dataset(
    dataset, split, tfds_data_dir=None, manual_dir=None, shuffle=False, limit=None
):
    """(tf.data of (uint8 [H, W, 3], int32 label), number of examples, class names)."""
    if dataset.startswith("folder:"):
        paths, labels, classes = folder_examples(dataset[len("folder:") :], split)
        if limit:
            # An evenly spread subset, so that every class keeps examples.
            step = max(1, len(paths) // limit)
            paths, labels = paths[::step][:limit], labels[::step][:limit]
        ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int32)))
        if shuffle:
            ds = ds.shuffle(len(paths), reshuffle_each_iteration=True)
        ds = ds.map(lambda p, y: (sources.decode_file(p), y), num_parallel_calls=tf.data.AUTOTUNE)
        return ds, len(paths), classes
    if dataset == "default":
        images, labels, _ = synthetic.split_arrays(_synthetic_split(split))
        if limit:
            images, labels = images[:limit], labels[:limit]
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        if shuffle:
            ds = ds.shuffle(len(labels), reshuffle_each_iteration=True)
        return ds, len(labels), synthetic.CLASSES
    return _tfds_labelled(dataset, split, tfds_data_dir, manual_dir, shuffle, limit)


def labelled(config, split, shuffle=False, limit=None):
    """`labelled_dataset` of a config's source (its dataset, tfds_data_dir and manual_dir)."""
    return labelled_dataset(
        config.dataset, split, config.tfds_data_dir, config.manual_dir, shuffle, limit
    )


def _tfds_labelled(name, split, data_dir, manual_dir, shuffle, limit):
    builder = sources.tfds_builder(name, data_dir, manual_dir)
    if "label" not in builder.info.features:
        raise sources.DataError(f"TFDS dataset {name!r} has no 'label' feature")
    tfds_split = sources.tfds_split(builder, split)
    ds = builder.as_dataset(split=tfds_split, shuffle_files=shuffle)
    count = builder.info.splits[tfds_split].num_examples
    if limit:
        ds, count = ds.take(limit), min(limit, count)
    classes = builder.info.features["label"].names

    def to_pair(example):
        return sources.to_rgb(example["image"]), tf.cast(example["label"], tf.int32)

    return ds.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE), count, classes


def resize_square(image, size):
    """Shorter side to `size` (bilinear, kept uint8), then the central size x size square."""
    shape = tf.shape(image)
    scale = tf.cast(size, tf.float32) / tf.cast(tf.minimum(shape[0], shape[1]), tf.float32)
    new = tf.cast(tf.math.ceil(tf.cast(shape[:2], tf.float32) * scale), tf.int32)
    resized = tf.image.resize(image, tf.maximum(new, size), method="bilinear", antialias=True)
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return preprocess.center_crop(resized, size)


def model_crop_size(input_mode, crop_size):
    """224 for images, 28 for z (the encoder subsamples by 8)."""
    return crop_size // rate.SUBSAMPLING if input_mode == "compressed" else crop_size


def augment_and_batch(
    ds, *, size, training, batch_size, cache=False, drop_remainder=None, crop_grid=1
):
    """(input, label) -> batches: random crop (starting at multiples of `crop_grid`) + mirror
    for training, centre crop otherwise.

    `size` None keeps the inputs whole (the crop is then made in the step, after the codec)."""
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.repeat().shuffle(1024)
        if size is not None:

            def augment(example, seed):
                x, y = example
                return preprocess.random_crop_and_mirror(x, size, seed, crop_grid), y

            ds = preprocess.with_seeds(ds).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    elif size is not None:
        ds = ds.map(lambda x, y: (preprocess.center_crop(x, size), y))
    if drop_remainder is None:
        drop_remainder = training
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def classification_pipeline(
    examples,
    *,
    input_mode,
    training,
    batch_size,
    resize=256,
    crop_size=224,
    cache=False,
    from_store=False,
    drop_remainder=None,
    crop_grid=1,
):
    """Batches of (x, labels) for the step; see the module docstring.

    From images, x is the uint8 image resized square to `resize`, cropped here for RGB inputs
    and left whole for the codec (`tfcomp.data.device.CodecInputs` encodes and crops it in the
    step); from a store, x is the stored z, cropped in the step as well.
    """
    if not from_store:
        examples = examples.map(
            lambda x, y: (resize_square(x, resize), y), num_parallel_calls=tf.data.AUTOTUNE
        )
    size = crop_size if input_mode == "rgb" and not from_store else None
    return augment_and_batch(
        examples,
        size=size,
        training=training,
        batch_size=batch_size,
        cache=cache,
        drop_remainder=drop_remainder,
        crop_grid=crop_grid,
    )
