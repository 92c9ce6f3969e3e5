import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfcomp.data import preprocess, sources


def unique_image(height, width):
    """Every pixel distinct, so a crop reveals where it was taken from."""
    values = np.arange(height * width * 3, dtype=np.int64) % 251
    image = values.reshape(height, width, 3).astype(np.uint8)
    image[..., 0] = (np.arange(height)[:, None] + np.zeros(width, int)).astype(np.uint8)
    image[..., 1] = (np.arange(width)[None, :] + np.zeros((height, 1), int)).astype(np.uint8)
    return image


def locate(crop, image):
    """(top, left) of `crop` in `image`, read off the row/column-coded channels."""
    return int(crop[0, 0, 0]), int(crop[0, 0, 1])


@pytest.mark.parametrize("mode", ["eager", "tf.data"])
def test_random_crop_is_a_window_of_the_image(mode):
    image = unique_image(40, 50)
    if mode == "eager":
        seeds = [tf.constant([3, i], tf.int64) for i in range(5)]
        crops = [preprocess.random_crop(tf.constant(image), 16, s).numpy() for s in seeds]
    else:
        ds = preprocess.with_seeds(tf.data.Dataset.from_tensors(image).repeat(5))
        crops = [c.numpy() for c in ds.map(lambda x, s: preprocess.random_crop(x, 16, s))]
    for crop in crops:
        top, left = locate(crop, image)
        np.testing.assert_array_equal(crop, image[top : top + 16, left : left + 16])
    assert len({locate(c, image) for c in crops}) > 1


@pytest.mark.parametrize("mode", ["eager", "tf.data"])
def test_center_crop_is_the_middle(mode):
    image = unique_image(40, 51)
    if mode == "eager":
        crop = preprocess.center_crop(tf.constant(image), 16).numpy()
    else:
        ds = tf.data.Dataset.from_tensors(image).map(lambda x: preprocess.center_crop(x, 16))
        crop = next(iter(ds)).numpy()
    np.testing.assert_array_equal(crop, image[12:28, 17:33])


def test_small_images_are_upscaled_before_cropping():
    crop = preprocess.random_crop(tf.zeros([10, 30, 3], tf.uint8), 16, tf.constant([0, 0]))
    assert crop.shape == (16, 16, 3) and crop.dtype == tf.uint8


def test_random_mirror_flips_or_keeps():
    image = unique_image(4, 6)
    seeds = [tf.constant([5, i]) for i in range(30)]
    seen = {preprocess.random_mirror(tf.constant(image), s).numpy().tobytes() for s in seeds}
    assert seen == {image.tobytes(), image[:, ::-1].tobytes()}


def write_images(folder, modes=("RGB", "L", "RGBA", "P")):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, mode in enumerate(modes):
        rgb = Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8))
        rgb.convert(mode).save(os.path.join(folder, f"img{i}.png"))


def test_folder_source_converts_every_mode_to_rgb(tmp_path):
    write_images(str(tmp_path / "train" / "a"))
    images = list(sources.image_dataset(f"folder:{tmp_path}", "train"))
    assert len(images) == 4
    assert all(im.shape[-1] == 3 and im.dtype == tf.uint8 for im in images)


def test_folder_source_uses_the_split_subfolder_when_present(tmp_path):
    write_images(str(tmp_path / "train"), modes=("RGB",))
    write_images(str(tmp_path / "val"), modes=("RGB", "L"))
    assert len(sources.image_paths(f"folder:{tmp_path}", "val")) == 2
    assert len(sources.image_paths(f"folder:{tmp_path}", "train")) == 1


def test_a_limit_on_a_folder_of_class_folders_spreads_over_the_classes(tmp_path):
    # Sorted files a/img0..3, b/img0..3: 2 of 8 evenly spread are a/img0 and b/img0 (indices
    # 0 and 4), not the first class's two; without a limit, all 8 in order.
    for label in "ab":
        write_images(str(tmp_path / "val" / label), modes=("RGB",) * 4)
    named = sources.load_images(f"folder:{tmp_path}", "val", limit=2)
    paths = sources.image_paths(f"folder:{tmp_path}", "val")
    assert [n for n, _ in named] == ["img0.png", "img0.png"]
    assert [im.shape[0] for _, im in named] == [20, 20]
    assert len(sources.load_images(f"folder:{tmp_path}", "val")) == len(paths) == 8
    assert [n for n, _ in sources.load_images(f"folder:{tmp_path}", "val", limit=4)] == [
        "img0.png",
        "img2.png",
        "img0.png",
        "img2.png",
    ]


def test_missing_folder_is_named(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(sources.DataError, match="nope"):
        sources.image_dataset(f"folder:{missing}")


def test_corrupt_image_is_named(tmp_path):
    write_images(str(tmp_path), modes=("RGB",))
    with open(tmp_path / "broken.jpg", "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(sources.DataError, match="broken.jpg"):
        sources.image_paths(f"folder:{tmp_path}", "train")


def test_image_broken_past_its_header_is_named_when_read(tmp_path):
    write_images(str(tmp_path), modes=("RGB",))
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "cut.jpg", quality=90)
    data = (tmp_path / "cut.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])  # header intact, scan data cut
    paths = sources.image_paths(f"folder:{tmp_path}", "train")  # headers parse: listed
    assert any(p.endswith("cut.jpg") for p in paths)
    with pytest.raises(tf.errors.OpError) as caught:
        for _ in sources.image_dataset(f"folder:{tmp_path}"):
            pass
    message = sources.data_error_message(caught.value)
    assert "cut.jpg" in message and "\n" not in message


def test_experiments_report_a_broken_file_in_one_line(tmp_path, capsys):
    from experiments.common import exit_cleanly

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "cut.jpg")
    data = (tmp_path / "cut.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])

    def main(argv):
        for _ in sources.image_dataset(f"folder:{tmp_path}"):
            pass

    with pytest.raises(SystemExit) as exited:
        exit_cleanly(main)([])
    assert exited.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot read image") and "cut.jpg" in err[0]


def test_embedded_default_photos_are_real_rgb_images():
    train = sources.image_paths("default", "train")
    test = sources.image_paths("default", "test")
    assert len(train) >= 10 and len(test) == 3 and not set(train) & set(test)
    image = next(iter(sources.image_dataset("default", "test")))
    assert image.shape[-1] == 3 and min(image.shape[:2]) >= 256


def test_unknown_tfds_name_is_refused_by_name():
    with pytest.raises(sources.DataError, match="no_such_dataset"):
        sources.image_dataset("no_such_dataset")
