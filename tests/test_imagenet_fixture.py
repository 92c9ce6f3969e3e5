"""The real TFDS `imagenet2012` builder, run offline on tars in the official layout."""

import io
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from tfcomp.data import classification, sources

SYNSETS = ("n01440764", "n01443537", "n01484850")


def jpeg_bytes(seed, size=(40, 30)):
    rgb = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG")
    return buffer.getvalue()


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def build_manual_dir(root, per_class=2, val=3):
    """ILSVRC2012_img_train.tar of per-synset tars, and ILSVRC2012_img_val.tar."""
    os.makedirs(root)
    with tarfile.open(os.path.join(root, "ILSVRC2012_img_train.tar"), "w") as train:
        for s, synset in enumerate(SYNSETS):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as class_tar:
                for i in range(per_class):
                    add(class_tar, f"{synset}_{i + 1}.JPEG", jpeg_bytes(10 * s + i))
            add(train, f"{synset}.tar", inner.getvalue())
    with tarfile.open(os.path.join(root, "ILSVRC2012_img_val.tar"), "w") as tar:
        for i in range(val):
            add(tar, f"ILSVRC2012_val_{i + 1:08d}.JPEG", jpeg_bytes(100 + i))


def official_label_indices():
    import tensorflow_datasets as tfds

    folder = os.path.dirname(tfds.image_classification.imagenet.__file__)
    folder = os.path.join(os.path.dirname(folder), "datasets", "imagenet2012")
    with open(os.path.join(folder, "labels.txt")) as f:
        labels = f.read().split()
    with open(os.path.join(folder, "validation_labels.txt")) as f:
        val = f.read().split()
    return labels, val


def test_imagenet2012_builds_offline_from_the_official_tars(tmp_path):
    manual = str(tmp_path / "manual")
    build_manual_dir(manual)
    kwargs = dict(tfds_data_dir=str(tmp_path / "tfds"), manual_dir=manual)
    train, count, classes = classification.labelled_dataset("imagenet2012", "train", **kwargs)
    assert count == 6 and len(classes) == 1000
    labels, val_synsets = official_label_indices()
    got = sorted(int(y) for _, y in train)
    assert got == sorted([labels.index(s) for s in SYNSETS] * 2)
    for image, _ in train.take(1):
        assert image.shape == (30, 40, 3) and image.dtype.name == "uint8"
    val, val_count, _ = classification.labelled_dataset("imagenet2012", "val", **kwargs)
    assert val_count == 3
    # Validation labels come from the builder's own list, in file-name order.
    assert sorted(int(y) for _, y in val) == sorted(labels.index(s) for s in val_synsets[:3])
    # The rate-distortion evaluation reads a TFDS split by the same name.
    named = sources.load_images("imagenet2012", "val", limit=2, **kwargs)
    assert [name for name, _ in named] == ["val_00000", "val_00001"]
    assert all(image.shape == (30, 40, 3) and image.dtype == np.uint8 for _, image in named)
    # And the classifier pipeline consumes it: 224-crops of 256-resized images.
    batch = next(
        iter(
            classification.classification_pipeline(
                train, input_mode="rgb", training=True, batch_size=4
            )
        )
    )
    assert batch[0].shape == (4, 224, 224, 3)


@pytest.mark.parametrize("make_dir", [False, True])
def test_missing_or_empty_manual_dir_is_named_in_one_line(tmp_path, make_dir):
    manual = tmp_path / "imagenet_tars"
    if make_dir:
        manual.mkdir()  # exists but holds no tars
    with pytest.raises(sources.DataError, match="imagenet") as caught:
        classification.labelled_dataset(
            "imagenet2012", "train", tfds_data_dir=str(tmp_path / "tfds"), manual_dir=str(manual)
        )
    assert "\n" not in str(caught.value)
