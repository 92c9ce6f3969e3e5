"""Image sources for every experiment, named by one string (the `--dataset` flag).

    default        the embedded photographs (`tfcomp.data.embedded`), offline everywhere
    folder:PATH    image files below PATH (or below PATH/<split> when that folder exists),
                   searched recursively: .jpg .jpeg .png .bmp
    NAME           any TFDS image dataset, e.g. imagenet2012 (manual download: put the
                   official tars in `manual_dir`; the real builder prepares them offline)

Every source yields uint8 H x W x 3 images; greyscale, palette and RGBA files are converted to
RGB. Missing paths and unreadable images stop with an error that names them.
"""

import os
import re

import tensorflow as tf
from PIL import Image

from tfcomp import io
from tfcomp.data import embedded

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class DataError(ValueError):
    """A dataset specification, path or file that cannot be used, named in the message."""


def data_error_message(error):
    """The DataError text inside a tf.data error raised while reading a file, else None.

    A DataError raised inside `tf.numpy_function` reaches the caller as a TensorFlow OpError
    whose message holds "DataError: <text>" among TensorFlow's own lines.
    """
    match = re.search(r"DataError: (.*)", str(getattr(error, "message", error)))
    return match.group(1).strip() if match else None


def list_images(root):
    """Sorted image files below `root`; raises DataError naming `root` if there are none."""
    if not os.path.isdir(root):
        raise DataError(f"image folder {root!r} does not exist or is not a directory")
    paths = []
    for folder, _, files in os.walk(root):
        paths.extend(os.path.join(folder, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found below {root!r}")
    return sorted(paths)


def check_readable(paths):
    """Raises DataError naming the first file Pillow cannot identify or whose data is broken."""
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as error:  # Pillow raises many types for broken files.
            raise DataError(f"cannot read image {path!r}: {error}") from None


def folder_split_root(path, split):
    """PATH/<split> when it exists (imagenette2/train), else PATH itself."""
    candidate = os.path.join(path, split)
    return candidate if os.path.isdir(candidate) else path


def image_paths(dataset, split):
    """Image files of a file-based source ('default' or 'folder:PATH'), checked readable."""
    if dataset == "default":
        paths = embedded.photo_paths("test" if split in ("test", "val", "validation") else "train")
    elif dataset.startswith("folder:"):
        paths = list_images(folder_split_root(dataset[len("folder:") :], split))
    else:
        raise DataError(f"{dataset!r} is not a file-based source (default or folder:PATH)")
    check_readable(paths)
    return paths


def read_rgb(path):
    """uint8 [H, W, 3] of an image file (`tfcomp.io.read_image`: EXIF orientation applied, any
    mode converted to RGB); DataError naming it.

    `check_readable` only parses headers (fast, at listing time); a file broken further in
    (a truncated JPEG, say) is found here, when it is read, and named.
    """
    try:
        return io.read_image(path, any_mode=True)[0]
    except io.ImageReadError as error:
        raise DataError(str(error)) from None


def decode_file(path):
    """Graph op: a file path -> uint8 [H, W, 3]; a broken file stops with its name.

    Decoded by Pillow through `tf.numpy_function` rather than `tf.io.decode_image`, whose
    errors ("jpeg::Uncompress failed") do not say which file; about 1 ms per Imagenette image,
    small beside any network here, and decoding runs in parallel (Pillow releases the GIL).
    """
    image = tf.numpy_function(read_rgb, [path], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    return image


def image_dataset(dataset, split="train", tfds_data_dir=None, manual_dir=None, shuffle=False):
    """tf.data.Dataset of uint8 [H, W, 3] images from a `--dataset` string (unbatched).

    With `shuffle`, the whole file list (or TFDS's files) is reshuffled on every pass, so that
    folder trees sorted by class are not read class by class.
    """
    if dataset == "default" or dataset.startswith("folder:"):
        paths = image_paths(dataset, split)
        ds = tf.data.Dataset.from_tensor_slices(paths)
        if shuffle:
            ds = ds.shuffle(len(paths), reshuffle_each_iteration=True)
        return ds.map(decode_file, num_parallel_calls=tf.data.AUTOTUNE)
    return _tfds_images(dataset, split, tfds_data_dir, manual_dir, shuffle)


def tfds_builder(name, data_dir, manual_dir):
    """A prepared TFDS builder; prepares it (offline, from `manual_dir` if given) first."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:
        raise DataError(
            f"unknown dataset {name!r}: expected 'default', 'folder:PATH' or a TFDS name ({error})"
        ) from None
    if manual_dir and not os.path.isdir(manual_dir):
        raise DataError(f"manual directory {manual_dir!r} for {name!r} does not exist")
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    try:
        builder.download_and_prepare(download_config=config)
    except AssertionError as error:  # TFDS asserts on missing or empty manual directories
        first = str(error).strip().splitlines()[0] if str(error).strip() else "assertion failed"
        raise DataError(f"cannot prepare TFDS dataset {name!r}: {first}") from None
    return builder


def tfds_split(builder, split):
    """Our split names (train / val / test) to the builder's."""
    if split in builder.info.splits:
        return split
    for alias in {"val": ("validation", "test"), "test": ("test", "validation")}.get(split, ()):
        if alias in builder.info.splits:
            return alias
    raise DataError(
        f"dataset {builder.name!r} has no split {split!r} ({list(builder.info.splits)})"
    )


def to_rgb(image):
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    return tf.cast(image, tf.uint8)


def _tfds_images(name, split, data_dir, manual_dir, shuffle):
    builder = tfds_builder(name, data_dir, manual_dir)
    ds = builder.as_dataset(split=tfds_split(builder, split), shuffle_files=shuffle)
    return ds.map(lambda example: to_rgb(example["image"]), num_parallel_calls=tf.data.AUTOTUNE)


def load_images(dataset, split="test", limit=None, tfds_data_dir=None, manual_dir=None):
    """[(name, uint8 array)] of any source, in order; for evaluation. `limit` takes that many
    of a folder's sorted files evenly spread over them (a folder of class folders gives every
    class its share, not the first class's files), of a TFDS split the first.

    Files are named by their file name, TFDS examples by split and index ("test_00003").
    """
    if dataset == "default" or dataset.startswith("folder:"):
        paths = image_paths(dataset, split)
        if limit is not None and limit < len(paths):
            paths = [paths[i * len(paths) // limit] for i in range(limit)]
        return [(os.path.basename(p), read_rgb(p)) for p in paths]
    images = _tfds_images(dataset, split, tfds_data_dir, manual_dir, shuffle=False)
    if limit is not None:
        images = images.take(limit)
    return [(f"{split}_{i:05d}", image.numpy()) for i, image in enumerate(images)]
