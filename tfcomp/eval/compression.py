"""Rate and distortion of a trained codec on whole images (paper Appendix A.2).

Per image: the estimated rate in bits per pixel of the *original* h x w pixels, from the soft
histogram (the training estimate) and from the hard symbols' empirical entropy; PSNR, SSIM and
MS-SSIM of the reconstruction rounded to 8 bits. Padding symbols are included in the count of
symbols (they are part of what would be stored), so bpp = (#symbols * H) / (h * w).
"""

import numpy as np
import tensorflow as tf

from tfcomp.eval import image_metrics


def evaluate_image(codec, image):
    """dict of rates and qualities for one uint8 H x W x 3 image."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    outputs = codec(tf.constant(image[None]))
    num_symbols = int(np.prod(outputs["symbols"].shape))
    pixels = height * width
    soft = float(outputs["entropy"])
    hard = float(outputs["entropy_hard"])
    record = {
        "height": height,
        "width": width,
        "entropy_soft": soft,
        "entropy_hard": hard,
        "bpp_soft_estimate": soft * num_symbols / pixels,
        "bpp_hard_entropy": hard * num_symbols / pixels,
    }
    record.update(image_metrics.image_quality(image, outputs["x_hat"][0].numpy()))
    return record


def evaluate_codec(codec, named_images, progress=None):
    """{'images': {name: record}, 'mean': {key: mean}} for [(name, uint8 image)]."""
    records = {}
    for i, (name, image) in enumerate(named_images):
        records[name] = evaluate_image(codec, image)
        if progress is not None:
            progress.update(i + 1)
    keys = ["bpp_soft_estimate", "bpp_hard_entropy", "psnr", "ssim", "ms_ssim", "mse"]
    mean = {k: image_metrics.mean_of(list(records.values()), k) for k in keys}
    return {"channels": codec.channels, "images": records, "mean": mean}
