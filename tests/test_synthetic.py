"""The embedded labelled data: deterministic, balanced, masks consistent with labels."""

import math

import numpy as np
import pytest

from tfcomp.data import classification, segmentation, synthetic


def test_examples_are_deterministic_and_splits_differ():
    a_image, a_label, a_mask = synthetic.example("train", 7)
    b_image, b_label, b_mask = synthetic.example("train", 7)
    np.testing.assert_array_equal(a_image, b_image)
    np.testing.assert_array_equal(a_mask, b_mask)
    assert a_label == b_label == 7
    v_image, _, _ = synthetic.example("val", 7)
    assert not np.array_equal(a_image, v_image)
    assert a_image.shape == (64, 64, 3) and a_image.dtype == np.uint8


def test_masks_hold_background_and_the_labelled_object_only():
    images, labels, masks = synthetic.split_arrays("train", 40)
    assert np.bincount(labels, minlength=10).tolist() == [4] * 10  # balanced classes
    for label, mask in zip(labels, masks):
        values = set(np.unique(mask).tolist())
        assert values == {0, label + 1}
        area = (mask > 0).mean()
        assert 0.02 < area < 0.6, (label, area)


@pytest.mark.parametrize(
    "name,area",
    [
        ("disc", math.pi),
        ("ring", math.pi * (1 - 0.55**2)),
        ("square", 1.6**2),
        ("frame", 1.6**2 - 0.8**2),
        ("cross", 2 * (2 * 0.6) - 0.6**2),
        ("bar", 2 * 0.5),
        ("diamond", 2 * 0.6),
        ("triangle", 3 * math.sqrt(3) / 4),
    ],
)
def test_shape_areas_match_their_closed_forms(name, area):
    # Area in units of radius^2, drawn large so that rasterisation error is small.
    radius, size = 40.0, 128
    mask = synthetic.shape_mask(synthetic.CLASSES.index(name), size, (64, 64), radius, 0.3)
    assert mask.sum() / radius**2 == pytest.approx(area, rel=0.03)


def test_sources_read_the_default_data_like_any_other():
    ds, count, classes = classification.labelled_dataset("default", "val")
    assert count == synthetic.SPLIT_SIZES["val"] and len(classes) == 10
    image, label = next(iter(ds))
    assert image.shape == (64, 64, 3) and image.dtype.name == "uint8" and 0 <= int(label) < 10
    ds, count, classes = segmentation.segmentation_dataset("default", "train", limit=5)
    assert count == 5 and classes[0] == "background" and len(classes) == 11
    image, mask = next(iter(ds))
    assert mask.shape == (64, 64, 1) and int(mask.numpy().max()) == 1  # example 0 is a disc


def test_a_generated_split_is_cached_on_disk_and_read_back_identically(tmp_path, monkeypatch):
    monkeypatch.setenv("TFCOMP_CACHE_DIR", str(tmp_path))
    synthetic.split_arrays.cache_clear()
    first = synthetic.split_arrays("val", count=5, seed=3)
    files = list(tmp_path.glob("synthetic_*_val_3_5.npz"))
    assert len(files) == 1
    synthetic.split_arrays.cache_clear()  # the next call reads the file
    second = synthetic.split_arrays("val", count=5, seed=3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    direct = synthetic.example("val", 4, 3)
    np.testing.assert_array_equal(second[0][4], direct[0])
    assert second[1][4] == direct[1]
    synthetic.split_arrays.cache_clear()
