"""JPEG, JPEG 2000 and WebP baselines through Pillow (libjpeg, OpenJPEG, libwebp), real bytes.

Each codec is swept over its rate setting, with the settings a user would pick for lossy
compression: JPEG over the quality factor (4:2:0, as a camera or web encoder would); JPEG 2000
over the target compression ratio with the irreversible 9/7 wavelet and its colour transform
(what lossy JPEG 2000 normally uses; Pillow's defaults are the reversible 5/3 wavelet, 0.3-0.5
dB PSNR below on Kodak, and no colour transform at all, `mct=0`, R, G and B coded apart: 1.8-5
dB below on three Kodak images at 0.16-1.2 bpp), one quality layer, OpenJPEG's rate
allocation; WebP (lossy, VP8) over its quality factor at its slowest, best method 6. The rate
is always the size of the encoded bytes: bpp = 8 * bytes / pixels.
"""

import io

import numpy as np
from PIL import Image

JPEG_QUALITIES = (3, 5, 8, 12, 20, 30, 50, 75, 90)
JPEG2000_RATIOS = (400, 250, 150, 100, 70, 48, 32, 20, 12)
WEBP_QUALITIES = (0, 5, 10, 20, 35, 50, 65, 80, 90)


def _save(image, **options):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, **options)
    return buffer.getvalue()


def jpeg_bytes(image, quality):
    return _save(image, format="JPEG", quality=int(quality))


def jpeg2000_bytes(image, ratio):
    return _save(
        image,
        format="JPEG2000",
        quality_mode="rates",
        quality_layers=[float(ratio)],
        irreversible=True,
        mct=1,
    )


def webp_bytes(image, quality):
    return _save(image, format="WEBP", quality=int(quality), method=6)


def decode_bytes(data):
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


BASELINES = {
    "jpeg": (jpeg_bytes, JPEG_QUALITIES, "quality"),
    "jpeg2000": (jpeg2000_bytes, JPEG2000_RATIOS, "ratio"),
    "webp": (webp_bytes, WEBP_QUALITIES, "quality"),
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
