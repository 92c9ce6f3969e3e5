"""PSNR, SSIM and MS-SSIM of 8-bit RGB images (paper Appendix A.2), from `tf.image`.

Both images are rounded and clipped to 0..255 first, as a decoded file would be. MS-SSIM with
TF's default five scales and 11 x 11 window needs more than 160 pixels per side; for smaller
images it is reported as None rather than computed on a degenerate pyramid.
"""

import numpy as np
import tensorflow as tf

MS_SSIM_MIN_SIDE = 161


def to_uint8(image):
    return np.clip(np.round(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)


def image_quality(original, reconstruction):
    """dict(psnr dB, ssim, ms_ssim or None, mse) of one H x W x 3 pair."""
    a = tf.constant(to_uint8(original))
    b = tf.constant(to_uint8(reconstruction))
    mse = float(tf.reduce_mean(tf.square(tf.cast(a, tf.float32) - tf.cast(b, tf.float32))))
    ms_ssim = None
    if min(a.shape[0], a.shape[1]) >= MS_SSIM_MIN_SIDE:
        ms_ssim = float(tf.image.ssim_multiscale(a, b, max_val=255))
    return {
        "mse": mse,
        "psnr": float(tf.image.psnr(a, b, max_val=255)),
        "ssim": float(tf.image.ssim(a, b, max_val=255)),
        "ms_ssim": ms_ssim,
    }


def mean_of(records, key):
    values = [r[key] for r in records if r.get(key) is not None]
    return float(np.mean(values)) if values else None
