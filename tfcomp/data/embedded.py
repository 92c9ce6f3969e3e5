"""The embedded default data: real photographs that scikit-image ships inside its wheel.

They exist offline on every fresh machine, so `make reproduce` and the trainers' defaults need no
download (read with `tfcomp.io.read_image`, greyscale converted to RGB). The split is fixed:
three colour photos (a cat, a coffee cup, a rocket launch) are held out for evaluation, the rest
train.
"""

import os

TRAIN_PHOTOS = (
    "astronaut.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "camera.png",
    "moon.png",
    "coins.png",
    "brick.png",
    "grass.png",
    "gravel.png",
)
TEST_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg")


def photo_dir():
    import skimage.data

    return os.path.dirname(skimage.data.__file__)


def photo_paths(split):
    """Paths of the embedded photographs of `split` ('train' or 'test')."""
    names = {"train": TRAIN_PHOTOS, "test": TEST_PHOTOS}.get(split)
    if names is None:
        raise ValueError(f"Unknown split {split!r} of the embedded photos; expected train or test.")
    return [os.path.join(photo_dir(), name) for name in names]
