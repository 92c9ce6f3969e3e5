"""Segmentation predictions and their scores: label maps, confusion matrices, mIoU (Section 5).

Networks predict logits at h/8 x w/8 for an h x w image (DeepLab-v2's output stride 8, or z's
own resolution); `predict_labels` upsamples them bilinearly by 8 and crops to the image.
Evaluation accumulates one confusion matrix over whole validation images (pixels with the
ignore label excluded) and reports per-class IoU = TP / (TP + FP + FN) and their mean.

A finished segmenter also saves its Fig. 5 panels (`write_examples`): its predicted label maps,
and its codec's reconstructions (JPEG, for display), of the first validation images, so that the
figure can be drawn where its weights are gone (models stay out of git; `read_examples`).
"""

import hashlib
import os
from io import BytesIO

import numpy as np
import tensorflow as tf
from PIL import Image

from tfcomp import io
from tfcomp.codec import rate
from tfcomp.data.segmentation import IGNORE
from tfcomp.nets.deeplab import upsample


def predict_labels(logits, height, width):
    """Class map [N, height, width]: logits at h'/w' upsampled to 8h' x 8w', cropped."""
    padded = rate.SUBSAMPLING * tf.shape(logits)[1:3]
    return tf.argmax(upsample(logits, padded), -1, tf.int32)[:, :height, :width]


def confusion(prediction, labels, num_classes):
    """[K, K] confusion counts (rows: truth) over pixels that are not the ignore label."""
    valid = tf.not_equal(labels, IGNORE)
    return tf.math.confusion_matrix(
        tf.boolean_mask(labels, valid),
        tf.boolean_mask(prediction, valid),
        num_classes=num_classes,
        dtype=tf.int64,
    )


def iou_from_confusion(matrix):
    """Per-class IoU, NaN for classes absent from truth and prediction; mIoU over the others."""
    matrix = np.asarray(matrix, np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    return iou, float(np.nanmean(iou)) if np.any(union > 0) else 0.0


class SegmenterEvaluator:
    """Scores of one model: `evaluator(pipeline, progress)` -> {'miou', 'per_class_iou',
    'pixel_accuracy', 'images'} over (x, mask) batches; the compiled step is traced once per
    input size and reused (a validation curve evaluates the same model many times).

    `transform(x, mask)`, when given, makes (model input, mask) inside the compiled function
    (the codec's part: `tfcomp.data.device.SegmentationInputs`)."""

    def __init__(self, model, num_classes, classes=None, transform=None):
        self.num_classes = num_classes
        self.names = classes or [str(i) for i in range(num_classes)]

        @tf.function(reduce_retracing=True)
        def step(x, labels):
            if transform is not None:
                x, labels = transform(x, labels)
            logits = model(x, training=False)["logits"]
            prediction = predict_labels(logits, tf.shape(labels)[1], tf.shape(labels)[2])
            return confusion(prediction, labels, num_classes)

        self.step = step

    def __call__(self, pipeline, progress=None):
        matrix = np.zeros((self.num_classes, self.num_classes), np.int64)
        count = 0
        for x, labels in pipeline:
            matrix += self.step(x, labels).numpy()
            count += int(labels.shape[0])
            if progress is not None:
                progress.update(count)
        iou, miou = iou_from_confusion(matrix)
        return {
            "miou": miou,
            "per_class_iou": {
                n: (None if np.isnan(v) else float(v)) for n, v in zip(self.names, iou)
            },
            "pixel_accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
            "images": count,
        }


def evaluate_segmenter(model, pipeline, num_classes, classes=None, progress=None, transform=None):
    """One evaluation (`SegmenterEvaluator`); `progress` counts images."""
    return SegmenterEvaluator(model, num_classes, classes, transform)(pipeline, progress)


def stride_sampled_labels(mask, stride):
    """The label map [H, W] that a map at 1 / `stride` resolution holds when each of its pixels
    takes the true label at the centre of its `stride` x `stride` block, upsampled by nearest
    neighbour: what an output stride can place, short of the sub-block boundaries that bilinear
    upsampling of logits may draw (`predict_labels`), so an indicator of the resolution's cost
    for thin classes, not a bound."""
    mask = np.asarray(mask)
    height, width = mask.shape
    sampled = mask[stride // 2 :: stride, stride // 2 :: stride]
    rows = np.minimum(np.arange(height) // stride, sampled.shape[0] - 1)
    columns = np.minimum(np.arange(width) // stride, sampled.shape[1] - 1)
    return sampled[rows[:, None], columns[None, :]]


def run_widths(mask, label):
    """Widths in pixels of the horizontal runs of `label` in a label map, row by row."""
    hits = np.pad(np.asarray(mask) == label, ((0, 0), (1, 1))).astype(np.int8)
    steps = np.diff(hits, axis=1)
    return np.nonzero(steps == -1)[1] - np.nonzero(steps == 1)[1]


def class_fractions(labels, classes):
    """{class: share of the pixels} of a label map, classes that occur only."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=len(classes))
    return {c: round(float(n) / labels.size, 4) for c, n in zip(classes, counts) if n}


EXAMPLES = "examples"  # a segmenter folder's Fig. 5 panels
# Reconstructions in the panels: JPEG at this quality, 44.5 dB PSNR from the reconstruction
# itself on CamVid at 0.0983 bpp (a 480 x 360 panel: 27 KB, where a PNG takes 212 KB).
PANEL_QUALITY = 90


def image_digest(image):
    """SHA-256 of an image's uint8 pixels and shape: which image a saved panel belongs to."""
    image = np.ascontiguousarray(np.asarray(image, np.uint8))
    return hashlib.sha256(repr(image.shape).encode() + image.tobytes()).hexdigest()


def figure_example(model, input_mode, codec, image, mask):
    """(predicted labels uint8 [H, W], the codec's 8-bit reconstruction uint8 [H, W, 3] or None)
    of one whole image (uint8 [H, W, 3]) and its mask ([H, W, 1]), as the evaluation sees them."""
    from tfcomp.data.device import SegmentationInputs, to_8_bits

    height, width = int(mask.shape[0]), int(mask.shape[1])
    x, _ = SegmentationInputs(input_mode, codec, from_store=False)(
        tf.convert_to_tensor(image)[None], tf.convert_to_tensor(mask)[None, ..., 0], training=False
    )
    logits = model(x, training=False)["logits"]
    labels = predict_labels(logits, height, width)[0].numpy().astype(np.uint8)
    if codec is None:
        return labels, None
    x_hat = to_8_bits(codec.decode(codec.encode(tf.convert_to_tensor(image)[None])[0]))
    return labels, x_hat[0, :height, :width].numpy().astype(np.uint8)


def save_jpeg(path, image, quality=PANEL_QUALITY):
    """Writes a uint8 RGB image as JPEG atomically."""
    buffer = BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="JPEG", quality=quality)
    io.atomic_write(path, buffer.getvalue())


def figure_images(dataset, split, count, tfds_data_dir=None, manual_dir=None):
    """(indices, [(image, mask)] as uint8 arrays, class names): `count` images of a split spread
    evenly over it, first and last included (a video's frames, as CamVid's, differ little from
    one to the next), the images a figure shows and a segmenter's panels are made of."""
    from tfcomp.data import segmentation

    examples, total, classes = segmentation.segmentation_dataset(
        dataset, split, tfds_data_dir, manual_dir
    )
    count = min(count, total)
    indices = sorted({round(i * (total - 1) / max(count - 1, 1)) for i in range(count)})
    wanted = set(indices)
    pairs = [
        (image.numpy(), mask.numpy())
        for k, (image, mask) in enumerate(examples.take(indices[-1] + 1))
        if k in wanted
    ]
    return indices, pairs, classes


def write_examples(
    folder, model, input_mode, codec, dataset, split, count, tfds_data_dir=None, manual_dir=None
):
    """Saves the predictions of `count` images of `dataset`'s `split` (`figure_images`) as PNGs
    in folder/examples/ and, with a codec, its reconstructions as JPEGs (`PANEL_QUALITY`: shown,
    never measured), then examples.json naming the data and each image by its digest; returns
    how many images."""
    indices, examples, _ = figure_images(dataset, split, count, tfds_data_dir, manual_dir)
    target = os.path.join(folder, EXAMPLES)
    images = []
    for i, (image, mask) in enumerate(examples):
        labels, x_hat = figure_example(model, input_mode, codec, image, mask)
        io.save_png(os.path.join(target, f"{i:02d}_prediction.png"), labels)
        if x_hat is not None:
            save_jpeg(os.path.join(target, f"{i:02d}_reconstruction.jpg"), x_hat)
        images.append(image_digest(image))
    record = {
        "dataset": dataset,
        "split": split,
        "indices": list(indices),
        "images": images,
        "reconstructions": codec is not None,
    }
    io.write_json(record, os.path.join(target, "examples.json"))
    return len(examples)


def read_examples(folder, images, split):
    """[(labels, reconstruction or None)] saved in folder/examples/ for `images` (uint8 arrays,
    the figure's images of `split`, `figure_images`), or None where the folder saved no panels
    for them (none saved, fewer, other images); a panel file missing raises."""
    target = os.path.join(folder, EXAMPLES)
    path = os.path.join(target, "examples.json")
    if not os.path.isfile(path):
        return None
    record = io.read_json(path)
    saved = record["images"]
    wanted = [image_digest(image) for image in images]
    if record["split"] != split or saved[: len(wanted)] != wanted:
        return None
    panels = []
    for i in range(len(wanted)):
        labels, _ = io.read_image(os.path.join(target, f"{i:02d}_prediction.png"), any_mode=True)
        x_hat = None
        if record["reconstructions"]:
            x_hat, _ = io.read_image(os.path.join(target, f"{i:02d}_reconstruction.jpg"))
        panels.append((labels[..., 0], x_hat))
    return panels


def folder_label(path):
    """What tells runs apart in a figure: the folder holding a model folder or a codec file
    ("bpp0.0983", "rgb", "codec_bpp0.0983")."""
    return os.path.basename(os.path.dirname(os.path.abspath(path)))


def figure_rows(examples, columns):
    """(rows, titles) of Fig. 5 (`tfcomp.plots.segmentation_examples`): per image of `examples`
    ((image, mask) pairs), the image, one reconstruction per codec (the first column's on it
    that has one), the ground truth and each column's prediction; `columns`: (model card,
    [(labels, reconstruction or None)] per image, label) per model."""
    codecs = {}  # codec id -> (its folder's name, a model's panels), first seen first
    for card, panels, _ in columns:
        if card["codec_model_id"] and panels[0][1] is not None:
            codecs.setdefault(card["codec_model_id"], (folder_label(card["codec"]), panels))
    titles = ["image"] + [f"reconstruction\n{label}" for label, _ in codecs.values()]
    titles += ["ground truth"]
    titles += [f"{card['arch']} ({card['input_mode']})\n{label}" for card, _, label in columns]
    rows = []
    for i, (image, mask) in enumerate(examples):
        row = [image] + [panels[i][1] for _, panels in codecs.values()] + [mask[..., 0]]
        rows.append(row + [panels[i][0] for _, panels, _ in columns])
    return rows, titles
