"""JPEG, JPEG 2000 and WebP baselines through Pillow (libjpeg, OpenJPEG, libwebp), real bytes.

Each codec is swept over its rate setting, with the settings a user would pick for lossy
compression: JPEG over the quality factor (4:2:0, as a camera or web encoder would); JPEG 2000
over the target compression ratio with the irreversible 9/7 wavelet and its colour transform
(what lossy JPEG 2000 normally uses; Pillow's defaults are the reversible 5/3 wavelet, 0.3-0.5
dB PSNR below on Kodak, and no colour transform at all, `mct=0`, R, G and B coded apart: 1.8-5
dB below on three Kodak images at 0.16-1.2 bpp), one quality layer, OpenJPEG's rate
allocation; WebP (lossy, VP8) over its quality factor at its slowest, best method 6. The rate
is always the size of the encoded bytes: bpp = 8 * bytes / pixels.

`header_bytes` says how many of a file's bytes come before its entropy-coded data (container,
markers, tables): at the lowest rates on small images they are a large share of a file (a
224 x 224 JPEG 2000 file of ~600 bytes spends ~226 on them), so the evaluation also reports
the rate after them (`bpp_payload`).
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


def _jpeg_header(data):
    """Bytes through the first start-of-scan segment (SOI, APPn, quantisation and Huffman
    tables, SOF, SOS): the marker segments before the first entropy-coded scan."""
    at = 2  # SOI
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker, length = data[at + 1], int.from_bytes(data[at + 2 : at + 4], "big")
        at += 2 + length
        if marker == 0xDA:  # SOS: the scan's data follows its header
            return at
    raise ValueError("not a JPEG file with a scan (no SOS marker)")


def _jpeg2000_header(data):
    """Bytes before the first tile-part (SOT marker, FF90): the JP2 boxes and the codestream's
    main header (SIZ, COD, QCD, OpenJPEG's comment); tile-part headers count as payload."""
    start = data.find(b"\xff\x4f\xff\x51")  # SOC then SIZ: the codestream's first bytes
    sot = data.find(b"\xff\x90", start + 4) if start >= 0 else -1
    if sot < 0:
        raise ValueError("not a JPEG 2000 file with a tile (no SOC/SIZ or SOT marker)")
    return sot


def _webp_header(data):
    """Bytes before the VP8 bitstream: the RIFF header, the chunks before VP8 (VP8X and the
    like), the VP8 chunk's header and its 10-byte key-frame header."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file (no RIFF/WEBP header)")
    at = 12
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        if kind == b"VP8 ":
            return at + 8 + 10
        at += 8 + size + (size & 1)
    raise ValueError("not a lossy WebP file (no VP8 chunk)")


HEADERS = {"jpeg": _jpeg_header, "jpeg2000": _jpeg2000_header, "webp": _webp_header}


def header_bytes(name, data):
    """How many bytes of a baseline `name`'s file come before its entropy-coded data."""
    return HEADERS[name](data)


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
