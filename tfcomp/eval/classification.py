"""Top-k accuracy of classifiers over a validation pipeline, and top-k predictions (Section 4.4).

The paper reports top-1 and top-5 on centre crops (224 x 224 RGB, 28 x 28 z); evaluation
pipelines come from `tfcomp.data.classification` with `training=False`.
"""

import numpy as np
import tensorflow as tf


class ClassifierEvaluator:
    """Top-k accuracy of one model: `evaluator(pipeline, progress)` -> {'top1', 'top5',
    'examples'} over a finite pipeline of (x, labels) batches. Its compiled prediction is traced
    once and reused: a validation curve evaluates the same model many times.

    `transform(x)`, when given, makes the model input inside the compiled function (the codec's
    part: `tfcomp.data.device.CodecInputs`)."""

    def __init__(self, model, transform=None):
        @tf.function(reduce_retracing=True)
        def predict(x):
            inputs = x if transform is None else transform(x)
            return tf.cast(model(inputs, training=False)["logits"], tf.float32)

        self.predict = predict

    def __call__(self, pipeline, progress=None):
        top1 = top5 = total = 0
        for i, (inputs, labels) in enumerate(pipeline):
            logits = self.predict(inputs)
            k = min(5, logits.shape[-1])
            top1 += int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, 1), tf.int32)))
            top5 += int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, k), tf.int32)))
            total += int(labels.shape[0])
            if progress is not None:
                progress.update(i + 1)
        return {"top1": top1 / max(total, 1), "top5": top5 / max(total, 1), "examples": total}


def evaluate_classifier(model, pipeline, progress=None, transform=None):
    """One evaluation (`ClassifierEvaluator`)."""
    return ClassifierEvaluator(model, transform)(pipeline, progress)


def top_k(logits, classes, k):
    """[{class, index, probability}] of the k most probable classes of one logits vector."""
    logits = np.asarray(logits, np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")[: min(k, len(classes))]
    return [{"class": classes[i], "index": int(i), "probability": float(probs[i])} for i in order]
