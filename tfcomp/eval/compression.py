"""Rate and distortion of trained codecs and of JPEG / JPEG 2000 (paper Appendix A.2, Fig. 8).

Learned codecs are measured on real files: each image is compressed to `.tfc` bytes and
decompressed from them, so `bpp_real` = 8 * file bytes / (h * w), header included
(`bpp_payload`: the bytes after the 32-byte header; for the baselines, after their containers,
markers and tables, `baselines.header_bytes`). Beside it
stand the training *estimate*, which is not a file size: `bpp_estimate` (the soft histogram's
entropy, per original pixel with the padded symbols counted), and `entropy_hard`, the empirical
entropy of this image's symbols in bits/symbol. PSNR, SSIM and MS-SSIM compare
8-bit images.
"""

import hashlib

import numpy as np
import tensorflow as tf

from tfcomp.codec import bitstream
from tfcomp.codec.files import CodecFiles
from tfcomp.eval import baselines, image_metrics

QUALITY_KEYS = ("psnr", "ssim", "ms_ssim")


def evaluate_image(files, image):
    """dict of rates and qualities for one uint8 H x W x 3 image, through a real file."""
    return measure_image(files, image)[0]


def measure_image(files, image):
    """(`evaluate_image`'s record, the image's symbols [h, w, C] as numpy)."""
    codec = files.codec
    image = np.asarray(image)
    height, width = image.shape[:2]
    outputs = codec(tf.constant(image[None]))
    num_symbols = int(np.prod(outputs["symbols"].shape))
    pixels = height * width
    data = files.compress(image)
    decoded = files.decompress(data)
    record = {
        "height": height,
        "width": width,
        "bytes": len(data),
        "bpp_real": 8.0 * len(data) / pixels,
        # The rate after the file's header (`baselines.header_bytes` for the baselines).
        "bpp_payload": 8.0 * (len(data) - bitstream.HEADER_SIZE) / pixels,
        "bpp_estimate": float(outputs["entropy"]) * num_symbols / pixels,
        "entropy_hard": float(outputs["entropy_hard"]),
    }
    record.update(image_metrics.image_quality(image, decoded))
    return record, outputs["symbols"][0].numpy()


def channel_usage(counts):
    """{"channel_entropy": [bits/symbol of each channel's own symbol histogram],
    "constant_channels": channels that coded one symbol throughout} from symbol counts [C, L]:
    a channel whose every assignment went one-hot on one center carries nothing (README, Known
    limitations)."""
    p = counts / np.maximum(counts.sum(-1, keepdims=True), 1)
    logs = np.log2(np.where(p > 0, p, 1.0))
    return {
        "channel_entropy": [float(h) for h in -(p * logs).sum(-1)],
        "constant_channels": int(np.sum((counts > 0).sum(-1) <= 1)),
    }


def image_set(named_images):
    """{"images": count, "images_id": 16 hex digits of the sorted names}: which images a
    measurement used, so that two measurements are compared only on the same set."""
    names = "\n".join(sorted(name for name, _ in named_images))
    return {"images": len(named_images), "images_id": hashlib.sha1(names.encode()).hexdigest()[:16]}


def summarize(records):
    keys = sorted({k for r in records for k, v in r.items() if isinstance(v, float)})
    return {k: image_metrics.mean_of(records, k) for k in keys}


def evaluate_codec(codec, named_images, progress=None):
    """{'images': {name: record}, 'mean': {key: mean}, and `channel_usage` over all the images}
    for [(name, uint8 image)]."""
    files = CodecFiles(codec)
    records = {}
    counts = np.zeros([codec.channels, codec.num_centers], np.int64)
    for i, (name, image) in enumerate(named_images):
        records[name], symbols = measure_image(files, image)
        counts += [np.bincount(s.ravel(), minlength=codec.num_centers) for s in symbols.T]
        if progress is not None:
            progress.update(i + 1)
    return {
        "channels": codec.channels,
        "model_id": files.model_id.hex(),
        "images": records,
        "mean": summarize(list(records.values())),
        **channel_usage(counts),
    }


# What a baseline point keeps of each image (rounded to 6 decimals: ~60 bytes of JSON an image
# and setting), so that a codec can be compared with each image's own curve (tools/claims.py).
IMAGE_KEYS = ("bpp_real", "bpp_payload", "psnr", "ssim", "ms_ssim")


def evaluate_baseline(name, named_images, progress=None):
    """One RD point per setting: mean real bpp, bpp after the headers and qualities over the
    images, and under "images" each image's (`IMAGE_KEYS`)."""
    per_setting = {}
    for i, (image_name, image) in enumerate(named_images):
        pixels = image.shape[0] * image.shape[1]
        for setting, data, decoded in baselines.sweep(name, image):
            payload = len(data) - baselines.header_bytes(name, data)
            record = {"bpp_real": 8.0 * len(data) / pixels, "bpp_payload": 8.0 * payload / pixels}
            record.update(image_metrics.image_quality(image, decoded))
            per_setting.setdefault(setting, {})[image_name] = record
        if progress is not None:
            progress.update(i + 1)
    key = baselines.BASELINES[name][2]
    return [
        {
            key: setting,
            **summarize(list(records.values())),
            "images": {
                n: {k: round(r[k], 6) for k in IMAGE_KEYS if r.get(k) is not None}
                for n, r in records.items()
            },
        }
        for setting, records in per_setting.items()
    ]
