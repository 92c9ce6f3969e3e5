"""The embedded labelled data: objects of 10 classes composited onto real photographs.

With no data given (`--dataset=default`), the classifiers and segmenters need labelled images
that exist offline on a fresh machine. They are generated here, deterministically, from the
photographs scikit-image ships (`tfcomp.data.embedded`):

  * each image is a random crop of a *background* photograph (rescaled, mirrored at random);
  * one object of one of 10 shape classes (disc, ring, square, frame, triangle, diamond, cross,
    star, crescent, bar), at a random scale, rotation and position, is pasted onto it with a
    soft 1-pixel edge;
  * the label is the object's class; the mask holds 0 for background, 1..10 for the object
    (class index + 1), so segmentation has 11 classes like CamVid has 11.

The object's surface is the luminance of a random patch of a random photograph, tinted with its
class's colour (jittered per image): colour and shape both carry the class, texture does not.
Train and validation images use disjoint random streams and disjoint background photographs
(validation backgrounds are the codec's held-out photos), so validation accuracy measures
generalisation. The same (split, index) always gives the same
image: generation uses `numpy.random.default_rng((seed, split, index))`.
"""

import functools
import hashlib
import io
import math
import os

import numpy as np
from PIL import Image, ImageDraw

from tfcomp.data import embedded
from tfcomp.io import atomic_write, read_image

CLASSES = (
    "disc",
    "ring",
    "square",
    "frame",
    "triangle",
    "diamond",
    "cross",
    "star",
    "crescent",
    "bar",
)
CLASS_COLOURS = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (128, 128, 0),
    (250, 190, 212),
)
SEGMENTATION_CLASSES = ("background", *CLASSES)
IMAGE_SIZE = 64
SPLIT_SIZES = {"train": 1000, "val": 300}
_SPLIT_IDS = {"train": 0, "val": 1}


def _polygon(points, center, radius, angle):
    c, s = math.cos(angle), math.sin(angle)
    return [
        (center[0] + radius * (c * x - s * y), center[1] + radius * (s * x + c * y))
        for x, y in points
    ]


def _regular(n, inner=None):
    """Unit regular n-gon, or a star with inner radius `inner`."""
    count = 2 * n if inner else n
    return [
        (
            (inner if inner and i % 2 else 1.0) * math.cos(2 * math.pi * i / count - math.pi / 2),
            (inner if inner and i % 2 else 1.0) * math.sin(2 * math.pi * i / count - math.pi / 2),
        )
        for i in range(count)
    ]


def shape_mask(label, size, center, radius, angle):
    """Binary float32 [size, size] mask of class `label` drawn at 4x and downsampled."""
    scale = 4
    canvas = Image.new("L", (size * scale, size * scale), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy, r = center[0] * scale, center[1] * scale, radius * scale
    name = CLASSES[label]
    poly = lambda points, rr=r: draw.polygon(_polygon(points, (cx, cy), rr, angle), fill=255)
    if name in ("disc", "ring"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if name == "ring":
            draw.ellipse([cx - 0.55 * r, cy - 0.55 * r, cx + 0.55 * r, cy + 0.55 * r], fill=0)
    elif name in ("square", "frame"):
        poly([(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)])
        if name == "frame":
            draw.polygon(
                _polygon([(-0.4, -0.4), (0.4, -0.4), (0.4, 0.4), (-0.4, 0.4)], (cx, cy), r, angle),
                fill=0,
            )
    elif name == "triangle":
        poly(_regular(3))
    elif name == "diamond":
        poly([(0, -1), (0.6, 0), (0, 1), (-0.6, 0)])
    elif name == "cross":
        poly([(-1, -0.3), (1, -0.3), (1, 0.3), (-1, 0.3)])
        poly([(-0.3, -1), (0.3, -1), (0.3, 1), (-0.3, 1)])
    elif name == "star":
        poly(_regular(5, inner=0.4))
    elif name == "crescent":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        dx, dy = 0.5 * r * math.cos(angle), 0.5 * r * math.sin(angle)
        draw.ellipse([cx - r + dx, cy - r + dy, cx + r + dx, cy + r + dy], fill=0)
    elif name == "bar":
        poly([(-1, -0.25), (1, -0.25), (1, 0.25), (-1, 0.25)])
    small = canvas.resize((size, size), Image.BILINEAR)
    return np.asarray(small, np.float32) / 255.0


@functools.cache
def _photos(split):
    """Background photographs of the split and the texture photographs (all of them)."""
    photo_split = "train" if split == "train" else "test"
    backgrounds = [read_image(p, any_mode=True)[0] for p in embedded.photo_paths(photo_split)]
    textures = [read_image(p, any_mode=True)[0] for p in embedded.photo_paths("train")]
    textures += [read_image(p, any_mode=True)[0] for p in embedded.photo_paths("test")]
    return backgrounds, textures


def _random_patch(rng, photo, size):
    """A random size x size crop of `photo` after a random rescale (0.3x to 1x), maybe mirrored."""
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.3, 1.0) * min(h, w))
    side = max(side, size)
    top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    patch = Image.fromarray(photo[top : top + side, left : left + side])
    patch = np.asarray(patch.resize((size, size), Image.BILINEAR), np.float32)
    return patch[:, ::-1] if rng.random() < 0.5 else patch


def example(split, index, seed=0):
    """(uint8 image [64, 64, 3], int label, uint8 mask [64, 64]) number `index` of `split`."""
    if split not in _SPLIT_IDS:
        raise ValueError(f"unknown split {split!r} of the embedded labelled data: train or val")
    rng = np.random.default_rng((seed, _SPLIT_IDS[split], index))
    backgrounds, textures = _photos(split)
    label = int(index % len(CLASSES))  # balanced classes
    size = IMAGE_SIZE
    background = _random_patch(rng, backgrounds[rng.integers(len(backgrounds))], size)
    texture = _random_patch(rng, textures[rng.integers(len(textures))], size)
    # The object's texture is a photograph's luminance tinted with its class's colour (with
    # jitter), so colour and shape both carry the class, as they do for real objects.
    luminance = texture.mean(axis=-1, keepdims=True) / 255.0
    tint = np.clip(np.array(CLASS_COLOURS[label], np.float32) + rng.normal(0, 20, 3), 0, 255)
    texture = np.clip(tint * (0.5 + luminance), 0, 255)
    radius = rng.uniform(0.22, 0.38) * size
    center = rng.uniform(radius * 0.8, size - radius * 0.8, size=2)
    alpha = shape_mask(label, size, center, radius, rng.uniform(0, 2 * math.pi))[..., None]
    image = np.round(alpha * texture + (1 - alpha) * background).astype(np.uint8)
    mask = np.where(alpha[..., 0] >= 0.5, label + 1, 0).astype(np.uint8)
    return image, label, mask


def cache_dir():
    """Where generated splits are kept: $TFCOMP_CACHE_DIR, else ~/.cache/tfcomp."""
    return os.environ.get("TFCOMP_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "tfcomp"
    )


@functools.cache
def _generator_digest():
    """Hash of this generator's source and the photographs it reads: a cache key that changes
    whenever the images could."""
    digest = hashlib.sha256(open(__file__, "rb").read())
    for path in embedded.photo_paths("train") + embedded.photo_paths("test"):
        digest.update(os.path.basename(path).encode() + str(os.path.getsize(path)).encode())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def split_arrays(split, count=None, seed=0):
    """(images [N, 64, 64, 3] uint8, labels [N] int32, masks [N, 64, 64] uint8) of `split`.

    A whole split is generated once per machine (about 3 s) and then read from an .npz in
    `cache_dir()`, keyed by the generator's source, so that the many short processes of the
    Table 2 driver do not each regenerate it; the file is written atomically.
    """
    count = SPLIT_SIZES[split] if count is None else count
    path = os.path.join(cache_dir(), f"synthetic_{_generator_digest()}_{split}_{seed}_{count}.npz")
    if os.path.exists(path):
        with np.load(path) as arrays:
            return arrays["images"], arrays["labels"], arrays["masks"]
    images, labels, masks = zip(*(example(split, i, seed) for i in range(count)))
    arrays = np.stack(images), np.array(labels, np.int32), np.stack(masks)
    buffer = io.BytesIO()
    np.savez(buffer, images=arrays[0], labels=arrays[1], masks=arrays[2])
    try:
        atomic_write(path, buffer.getvalue())
    except OSError:  # a read-only home: generate every time
        pass
    return arrays
