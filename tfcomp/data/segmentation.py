"""Segmentation sources and preprocessing (paper Section 5, Appendix A.5).

Sources (`--dataset`):
    default        the embedded labelled images (`tfcomp.data.synthetic`): 10 shapes on
                   scikit-image's photographs, 64 x 64, masks 0 = background, 1..10
    camvid:PATH    CamVid (SegNet's 11 classes): PATH/{train,val}.txt list "image mask" pairs
                   relative to PATH; masks hold 0..10 and 11 = void, mapped to the ignore label
    voc2012_sbd    PASCAL VOC 2012 + SBD through `tfcomp.data.voc_sbd` (official archives in
                   `manual_dir`), 21 classes, 255 = ignore

Training examples are random-mirrored and randomly cropped to `crop_size` pixels (320 in the
paper), padded with the ignore label (and the mean colour) where the image is smaller. From a
store, z is cropped to crop_size/8 (40) at the same place as the mask, so a z crop covers
exactly the 8x larger pixel crop of the mask. Evaluation uses whole images, padded to a
multiple of 8 by the codec, with predictions cropped back. No network runs here: the codec runs
in the step (`tfcomp.data.device`).
"""

import os

import numpy as np
import tensorflow as tf

from tfcomp.codec import rate
from tfcomp.codec.model import RGB_MEAN
from tfcomp.data import classification, preprocess, sources, synthetic
from tfcomp.data.device import DECODER_MARGIN

IGNORE = 255
CAMVID_CLASSES = (
    "Sky Building Pole Road Pavement Tree SignSymbol Fence Car Pedestrian Bicyclist".split()
)


def camvid_pairs(root, split):
    listing = os.path.join(root, f"{split}.txt")
    if not os.path.isfile(listing):
        raise sources.DataError(
            f"CamVid listing {listing!r} not found (expected train.txt/val.txt)"
        )
    pairs = []
    with open(listing) as f:
        for line in f:
            if line.strip():
                image, mask = line.split()
                pairs.append((os.path.join(root, image), os.path.join(root, mask)))
    sources.check_readable([p for pair in pairs for p in pair])
    return pairs


def load_camvid_pair(image_path, mask_path):
    """Graph op: (uint8 image, uint8 mask [H, W, 1]); CamVid's void (11) becomes the ignore
    label, like VOC's 255."""
    mask = tf.io.decode_png(tf.io.read_file(mask_path), channels=1)
    mask = tf.where(mask >= len(CAMVID_CLASSES), tf.constant(IGNORE, tf.uint8), mask)
    return sources.decode_file(image_path), mask


def segmentation_dataset(dataset, split, tfds_data_dir=None, manual_dir=None, limit=None):
    """(tf.data of (uint8 [H, W, 3], uint8 mask [H, W, 1]), count, class names)."""
    if dataset.startswith("camvid:"):
        pairs = camvid_pairs(dataset[len("camvid:") :], split)
        if limit:
            pairs = pairs[:limit]
        images, masks = zip(*pairs)
        ds = tf.data.Dataset.from_tensor_slices((list(images), list(masks)))
        ds = ds.map(load_camvid_pair, num_parallel_calls=tf.data.AUTOTUNE)
        return ds, len(pairs), CAMVID_CLASSES
    if dataset == "default":
        images, _, masks = synthetic.split_arrays(classification._synthetic_split(split))
        if limit:
            images, masks = images[:limit], masks[:limit]
        ds = tf.data.Dataset.from_tensor_slices((images, masks[..., None]))
        return ds, len(images), synthetic.SEGMENTATION_CLASSES
    if dataset == "voc2012_sbd":
        from tfcomp.data import voc_sbd

        builder = sources.tfds_builder(dataset, tfds_data_dir, manual_dir)
        tfds_split = sources.tfds_split(builder, split)
        ds = builder.as_dataset(split=tfds_split)
        count = builder.info.splits[tfds_split].num_examples
        if limit:
            ds, count = ds.take(limit), min(limit, count)
        ds = ds.map(lambda e: (e["image"], e["segmentation"]))
        return ds, count, tuple(voc_sbd.CLASSES)
    raise sources.DataError(
        f"unknown segmentation dataset {dataset!r}; expected default, camvid:PATH or voc2012_sbd"
    )


CLASS_WEIGHTINGS = ("none", "median_frequency")


def class_pixel_counts(examples, num_classes):
    """(pixels of each class, pixels of the images holding each class) over the masks of
    (x, mask) examples; ignored pixels count in neither."""
    pixels = np.zeros(num_classes, np.int64)
    image_pixels = np.zeros(num_classes, np.int64)
    for mask in examples.map(lambda x, m: m).as_numpy_iterator():
        mask = mask.ravel()
        mask = mask[mask != IGNORE]
        counts = np.bincount(mask, minlength=num_classes)[:num_classes]
        pixels += counts
        image_pixels += np.where(counts > 0, mask.size, 0)
    return pixels, image_pixels


def class_weights(weighting, pixels, image_pixels):
    """Per-class loss weights (float32 [K]) from `class_pixel_counts`.

    none: all 1 (the paper). median_frequency: median(f) / f(c) with f(c) the class's pixels
    over the labelled pixels of the images that hold it (Eigen & Fergus, ICCV 2015; SegNet's CamVid
    training), so that rare, thin classes (CamVid's poles, signs, pedestrians) are not
    outvoted by road and sky; a class absent from training gets 0 (it never occurs there).
    """
    if weighting not in CLASS_WEIGHTINGS:
        raise ValueError(
            f"unknown class weighting {weighting!r}; expected one of {CLASS_WEIGHTINGS}"
        )
    pixels = np.asarray(pixels, np.float64)
    if weighting == "none":
        return np.ones(len(pixels), np.float32)
    present = pixels > 0
    if not present.any():
        raise ValueError("no labelled pixel in the training masks: cannot weight classes")
    frequency = np.where(present, pixels / np.maximum(image_pixels, 1), np.nan)
    median = np.median(frequency[present])
    return np.where(present, median / np.where(present, frequency, 1.0), 0.0).astype(np.float32)


def pad_mask(mask, height, width):
    """Pads a [H, W, 1] mask bottom/right to at least height x width with the ignore label."""
    shape = tf.shape(mask)
    paddings = [[0, tf.maximum(height - shape[0], 0)], [0, tf.maximum(width - shape[1], 0)], [0, 0]]
    return tf.cast(tf.pad(tf.cast(mask, tf.int32) - IGNORE, paddings) + IGNORE, tf.uint8)


def pad_to(image, mask, height, width):
    """Pads bottom/right up to height x width: the image with the mean colour, the mask with
    the ignore label."""
    shape = tf.shape(image)
    paddings = [[0, tf.maximum(height - shape[0], 0)], [0, tf.maximum(width - shape[1], 0)], [0, 0]]
    mean = tf.cast(tf.round(tf.constant(RGB_MEAN)), tf.int32)
    padded = tf.cast(tf.pad(tf.cast(image, tf.int32) - mean, paddings) + mean, image.dtype)
    return padded, pad_mask(mask, height, width)


def random_crop_pair(image, mask, crop, seed, step=1, margin=0):
    """The same random crop of an image-like tensor (crop, plus `margin` on each side, taken
    from its edge-mirrored padding where the tensor ends) and its mask (crop * step); `seed` is
    a stateless [2] seed (`preprocess.with_seeds`)."""
    shape = tf.shape(image)
    top_seed, left_seed = preprocess.split_seed(seed, 2)
    top = tf.random.stateless_uniform([], top_seed, 0, shape[0] - crop + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], left_seed, 0, shape[1] - crop + 1, dtype=tf.int32)
    if margin:
        image = tf.pad(image, [[margin, margin], [margin, margin], [0, 0]], mode="SYMMETRIC")
    cropped = image[top : top + crop + 2 * margin, left : left + crop + 2 * margin]
    mask = mask[top * step : (top + crop) * step, left * step : (left + crop) * step]
    return cropped, mask


def random_mirror_pair(image, mask, seed):
    flip = tf.random.stateless_uniform([], seed) < 0.5
    return (
        tf.cond(flip, lambda: image[:, ::-1], lambda: image),
        tf.cond(flip, lambda: mask[:, ::-1], lambda: mask),
    )


def segmentation_pipeline(
    examples,
    *,
    input_mode,
    training,
    batch_size,
    crop_size=320,
    cache=False,
    from_store=False,
):
    """Batches of (x, mask int32 [N, H, W]) for the step (`tfcomp.data.device`
    .SegmentationInputs makes the model input there); no network runs here.

    Evaluation: whole examples (any size), the image or the stored z with its mask, batched up
    to `batch_size` examples of one size (order changes; scores summed over images do not).
    Training, from images: image and mask padded to the crop (mean colour, ignore label), cut at
    the same random place and mirrored together; the codec, if any, encodes the crop in
    the step (a crop_size that is a multiple of 8 gives z of crop_size / 8). From a store: z
    (padded with zeros) and mask cut at the same place, z's crop crop_size / 8 and the mask's
    crop_size, mirrored together; in reconstructed mode z keeps `device.DECODER_MARGIN` z pixels
    around its crop for the decoder, and the step mirrors after decoding.
    """
    z_step = rate.SUBSAMPLING
    if from_store and input_mode == "rgb":
        raise ValueError("a store holds z: input mode must be compressed or reconstructed")
    ds = examples.cache() if cache else examples
    if not training:
        ds = ds.map(lambda x, m: (x, tf.cast(m[..., 0], tf.int32)))
        return ds.group_by_window(
            key_func=lambda x, m: tf.cast(tf.shape(m)[0] * 65536 + tf.shape(m)[1], tf.int64),
            reduce_func=lambda key, same_size: same_size.batch(batch_size),
            window_size=batch_size,
        ).prefetch(tf.data.AUTOTUNE)
    margin = DECODER_MARGIN if (from_store and input_mode == "reconstructed") else 0

    def augment(example, seed):
        x, mask = example
        crop_seed, mirror_seed = preprocess.split_seed(seed, 2)
        if from_store:  # x is z: its crop is 1/8 of the mask's
            crop = crop_size // z_step
            shape = tf.shape(x)
            padding = [[0, tf.maximum(crop - shape[0], 0)], [0, tf.maximum(crop - shape[1], 0)]]
            x = tf.pad(x, padding + [[0, 0]])
            shape = tf.shape(x)
            # Masks are padded to whole multiples of 8 so that z crops map onto them exactly.
            mask = pad_mask(mask, shape[0] * z_step, shape[1] * z_step)
            x, mask = random_crop_pair(x, mask, crop, crop_seed, z_step, margin)
            if margin:  # mirrored in the step, after decoding
                return x, tf.cast(mask[..., 0], tf.int32)
        else:  # the codec, if any, encodes the crop itself in the step
            x, mask = random_crop_pair(*pad_to(x, mask, crop_size, crop_size), crop_size, crop_seed)
        x, mask = random_mirror_pair(x, mask, mirror_seed)
        return x, tf.cast(mask[..., 0], tf.int32)

    ds = preprocess.with_seeds(ds.repeat().shuffle(256))
    ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
