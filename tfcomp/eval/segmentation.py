"""Segmentation predictions and their scores: label maps, confusion matrices, mIoU (Section 5).

Networks predict logits at h/8 x w/8 for an h x w image (DeepLab-v2's output stride 8, or z's
own resolution); `predict_labels` upsamples them bilinearly by 8 and crops to the image.
Evaluation accumulates one confusion matrix over whole validation images (pixels with the
ignore label excluded) and reports per-class IoU = TP / (TP + FP + FN) and their mean.
"""

import numpy as np
import tensorflow as tf

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


def class_fractions(labels, classes):
    """{class: share of the pixels} of a label map, classes that occur only."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=len(classes))
    return {c: round(float(n) / labels.size, 4) for c, n in zip(classes, counts) if n}
