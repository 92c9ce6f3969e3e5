"""Appendix A.4 preprocessing: mirror, resize, and the classifiers' crop/mirror pipeline, eagerly
and inside tf.data, against numpy and PIL references."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfcomp.data import classification, preprocess


def coded_image(height, width, channels=3, dtype=np.uint8):
    """Channel 0 codes the row, channel 1 the column (a crop tells where it came from); the rest
    is noise, so that no two pixels agree and a mirror is never the identity."""
    rng = np.random.default_rng(height * 1000 + width)
    image = rng.integers(0, 250, (height, width, channels)).astype(dtype)
    image[..., 0] = np.arange(height)[:, None]
    image[..., 1] = np.arange(width)[None, :]
    return image


def mirror_draws(image, mode, draws):
    if mode == "eager":
        seeds = [tf.constant([7, i], tf.int64) for i in range(draws)]
        return [preprocess.random_mirror(tf.constant(image), s).numpy() for s in seeds]
    ds = preprocess.with_seeds(tf.data.Dataset.from_tensors(image).repeat(draws))
    ds = ds.map(preprocess.random_mirror, num_parallel_calls=tf.data.AUTOTUNE)
    return [x.numpy() for x in ds]


@pytest.mark.parametrize("mode", ["eager", "tf.data"])
@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (8, np.float32)])  # RGB and z
def test_random_mirror_keeps_or_flips_with_probability_one_half(mode, channels, dtype):
    image = coded_image(5, 7, channels, dtype)
    draws = 200
    outputs = mirror_draws(image, mode, draws)
    flipped = 0
    for out in outputs:
        assert out.shape == image.shape and out.dtype == image.dtype
        if np.array_equal(out, image[:, ::-1]):
            flipped += 1
        else:
            np.testing.assert_array_equal(out, image)
    # Binomial(200, 1/2): 0.3..0.7 is more than 5 standard deviations wide.
    assert 0.3 * draws < flipped < 0.7 * draws, flipped


def pil_resize_square(image, size):
    """Reference: PIL bilinear (antialiased when shrinking) to shorter side `size`, the longer
    side ceil(long * size / short), then the central size x size square."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    new_h, new_w = max(size, int(np.ceil(height * scale))), max(size, int(np.ceil(width * scale)))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top : top + size, left : left + size]


SHAPES = [(40, 80, 20), (80, 40, 20), (33, 50, 20), (57, 91, 32), (30, 30, 48), (20, 35, 48)]


@pytest.mark.parametrize("mode", ["eager", "tf.data"])
def test_resize_square_matches_pil(mode):
    # Landscape, portrait, odd ratios, shrinking and enlarging: noise images, so any squash,
    # off-centre crop or wrong scale shows up as large differences.
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w, _ in SHAPES]
    for image, (_, _, size) in zip(images, SHAPES):
        if mode == "eager":
            out = classification.resize_square(tf.constant(image), size).numpy()
        else:
            ds = tf.data.Dataset.from_tensors(image)
            out = next(iter(ds.map(lambda x, s=size: classification.resize_square(x, s)))).numpy()
        assert out.shape == (size, size, 3) and out.dtype == np.uint8
        diff = np.abs(out.astype(int) - pil_resize_square(image, size).astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.3, (image.shape, size)


def test_resize_square_keeps_the_aspect_and_takes_the_middle():
    # Four vertical bands, 20 columns each: shorter side 40 -> 20 halves the width to 40, and
    # the central 20 x 20 square holds the two middle bands only (a squash would keep all four);
    # the bilinear filter blends one column at each band edge.
    colours = np.array([[0, 255, 0], [255, 0, 0], [0, 0, 255], [0, 255, 0]], np.uint8)
    image = np.repeat(colours, 20, axis=0)[None].repeat(40, axis=0)  # 40 x 80 x 3
    out = classification.resize_square(tf.constant(image), 20).numpy()
    np.testing.assert_array_equal(out[:, 1:9], np.broadcast_to(colours[1], (20, 8, 3)))
    np.testing.assert_array_equal(out[:, 11:19], np.broadcast_to(colours[2], (20, 8, 3)))
    # Portrait: the same along the rows.
    out = classification.resize_square(tf.constant(image.transpose(1, 0, 2)), 20).numpy()
    np.testing.assert_array_equal(out[1:9], np.broadcast_to(colours[1], (8, 20, 3)))
    np.testing.assert_array_equal(out[11:19], np.broadcast_to(colours[2], (8, 20, 3)))


def test_model_crop_sizes_are_224_for_images_and_28_for_z():
    assert classification.model_crop_size("rgb", 224) == 224
    assert classification.model_crop_size("reconstructed", 224) == 224
    assert classification.model_crop_size("compressed", 224) == 28


@pytest.mark.parametrize("channels,size", [(3, 32), (8, 28)])  # RGB (small), z (the paper's)
def test_training_crops_are_mirrored_windows_and_evaluation_the_centre(channels, size):
    # The classifiers' augmentation inside tf.data (augment_and_batch): for training, every
    # example is a size x size window of x or of its mirror, both occur, and windows vary; for
    # evaluation, exactly the central square.
    side = size + 6
    dtype = np.uint8 if channels == 3 else np.float32
    image = coded_image(side, side, channels, dtype)
    labels = tf.constant([0, 1, 2, 3])
    ds = tf.data.Dataset.from_tensor_slices((np.stack([image] * 4), labels))
    train = classification.augment_and_batch(ds, size=size, training=True, batch_size=4)
    seen, flips = set(), 0
    for inputs, _ in train.take(15):
        assert inputs.shape == (4, size, size, channels) and inputs.dtype == dtype
        for crop in inputs.numpy():
            top = int(crop[0, 0, 0])
            left, step = int(crop[0, 0, 1]), int(crop[0, 1, 1]) - int(crop[0, 0, 1])
            if step == -1:  # mirrored: columns run backwards
                flips += 1
                window = image[top : top + size, left - size + 1 : left + 1][:, ::-1]
            else:
                window = image[top : top + size, left : left + size]
            np.testing.assert_array_equal(crop, window)
            seen.add((top, left))
    assert 10 < flips < 50 and len(seen) > 5, (flips, len(seen))
    evaluation = classification.augment_and_batch(ds, size=size, training=False, batch_size=3)
    batches = [x.numpy() for x, _ in evaluation]
    assert [len(b) for b in batches] == [3, 1]  # evaluation keeps the remainder
    for crop in np.concatenate(batches):
        np.testing.assert_array_equal(crop, image[3 : 3 + size, 3 : 3 + size])


def window_origins(crops, size):
    """(top, left) of the windows that mirrored-or-not crops of `coded_image` were cut at."""
    origins = set()
    for crop in crops:
        top, left = int(crop[0, 0, 0]), int(crop[0, 0, 1])
        if int(crop[0, 1, 1]) - left == -1:  # mirrored: columns run backwards
            left -= size - 1
        origins.add((top, left))
    return origins


def test_training_crops_on_a_grid_start_at_its_multiples_only():
    # crop_grid=8 (the classifier setting): 32 x 32 crops of a 48 x 48 image start at rows and
    # columns 0, 8 or 16 (9 windows, as a z network's 4 x 4 crops of 6 x 6 z have), on the host
    # (tf.data) and in the step (tfcomp.data.device) alike; every window occurs.
    from tfcomp import configs
    from tfcomp.data import device

    size, grid = 32, 8
    image = coded_image(size + 16, size + 16)
    ds = tf.data.Dataset.from_tensor_slices((np.stack([image] * 4), tf.constant([0, 1, 2, 3])))
    train = classification.augment_and_batch(
        ds, size=size, training=True, batch_size=4, crop_grid=grid
    )
    assert train.element_spec[0].shape.as_list() == [4, size, size, 3]  # static, as A.4's
    host = np.concatenate([x.numpy() for x, _ in train.take(40)])
    batch = tf.constant(np.stack([image] * 160))
    in_step = device.crop_and_mirror(batch, size, True, grid).numpy()
    expected = {(top, left) for top in (0, 8, 16) for left in (0, 8, 16)}
    assert window_origins(host, size) == expected
    assert window_origins(in_step, size) == expected
    # Without a grid, the host crops start anywhere (the default, A.4).
    free = classification.augment_and_batch(ds, size=size, training=True, batch_size=4)
    origins = window_origins(np.concatenate([x.numpy() for x, _ in free.take(40)]), size)
    assert any(top % grid or left % grid for top, left in origins)
    with pytest.raises(ValueError, match="crop_grid=0"):
        configs.ClassifierConfig(crop_grid=0)
