"""JPEG and JPEG 2000 baselines through Pillow (libjpeg and OpenJPEG), with real bytes.

Each codec is swept over its rate setting: JPEG over the quality factor (4:2:0, as a camera or
web encoder would), JPEG 2000 over the target compression ratio (one quality layer, OpenJPEG's
rate allocation). The rate is always the size of the encoded bytes: bpp = 8 * bytes / pixels.
"""

import io

import numpy as np
from PIL import Image

JPEG_QUALITIES = (3, 5, 8, 12, 20, 30, 50, 75, 90)
JPEG2000_RATIOS = (400, 250, 150, 100, 70, 48, 32, 20, 12)


def jpeg_bytes(image, quality):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def jpeg2000_bytes(image, ratio):
    buffer = io.BytesIO()
    Image.fromarray(image).save(
        buffer, format="JPEG2000", quality_mode="rates", quality_layers=[float(ratio)]
    )
    return buffer.getvalue()


def decode_bytes(data):
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


BASELINES = {
    "jpeg": (jpeg_bytes, JPEG_QUALITIES, "quality"),
    "jpeg2000": (jpeg2000_bytes, JPEG2000_RATIOS, "ratio"),
}


def sweep(name, image):
    """[(setting, bytes, decoded uint8 image)] over the baseline's settings."""
    try:
        encode, settings, _ = BASELINES[name]
    except KeyError:
        raise ValueError(
            f"unknown baseline {name!r}; expected one of {sorted(BASELINES)}"
        ) from None
    out = []
    for setting in settings:
        data = encode(image, setting)
        out.append((setting, data, decode_bytes(data)))
    return out
