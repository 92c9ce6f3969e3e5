"""Training and evaluating DeepLab on RGB, reconstructed or compressed inputs (paper Section
5.3, Appendix A.5).

SGD momentum 0.9, batch 10, 20k iterations at paper scale; lr 1e-3 x (1 - step/max)^0.9 with
10x on the final (ASPP) layer, applied as a gradient multiplier; L2 weight decay 5e-4;
cross-entropy over pixels that are not the ignore label (255). The backbone starts from a
classification network of the same architecture when `init_classifier` names one. Evaluation
accumulates a confusion matrix over whole validation images and reports mIoU and per-class IoU.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from tfcomp import io
from tfcomp.codec.bitstream import model_id
from tfcomp.codec.files import CodecFiles
from tfcomp.data import segmentation, store
from tfcomp.nets.deeplab import build_deeplab, load_backbone, upsample
from tfcomp.train import distribute, loop
from tfcomp.train.classification import l2_penalty, load_codec

HEAD_LR_MULTIPLIER = 10.0


def segmentation_loss(logits, labels, num_classes):
    """Mean cross-entropy over non-ignored pixels; logits are upsampled to the labels' size."""
    logits = upsample(logits, tf.shape(labels)[1:3])
    valid = tf.not_equal(labels, segmentation.IGNORE)
    safe = tf.where(valid, labels, tf.zeros_like(labels))
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    weights = tf.cast(valid, tf.float32)
    count = tf.maximum(tf.reduce_sum(weights), 1.0)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, tf.int32), labels), tf.float32) * weights
    return tf.reduce_sum(ce * weights) / count, tf.reduce_sum(correct) / count


def predict_labels(logits, height, width):
    """Class map [N, height, width]: logits at h'/w' upsampled to 8h' x 8w', cropped."""
    padded = 8 * tf.shape(logits)[1:3]
    return tf.argmax(upsample(logits, padded), -1, tf.int32)[:, :height, :width]


def confusion(prediction, labels, num_classes):
    """[K, K] confusion counts (rows: truth) over pixels that are not the ignore label."""
    valid = tf.not_equal(labels, segmentation.IGNORE)
    return tf.math.confusion_matrix(
        tf.boolean_mask(labels, valid),
        tf.boolean_mask(prediction, valid),
        num_classes=num_classes,
        dtype=tf.int64,
    )


def iou_from_confusion(matrix):
    """Per-class IoU = TP / (TP + FP + FN), NaN for classes absent from truth and prediction;
    mIoU is the mean over the others."""
    matrix = np.asarray(matrix, np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    return iou, float(np.nanmean(iou)) if np.any(union > 0) else 0.0


def evaluate_segmenter(model, pipeline, num_classes, classes=None, progress=None):
    @tf.function(reduce_retracing=True)
    def step(x, labels):
        logits = model(x, training=False)["logits"]
        prediction = predict_labels(logits, tf.shape(labels)[1], tf.shape(labels)[2])
        return confusion(prediction, labels, num_classes)

    matrix = np.zeros((num_classes, num_classes), np.int64)
    count = 0
    for i, (x, labels) in enumerate(pipeline):
        matrix += step(x, labels).numpy()
        count += 1
        if progress is not None:
            progress.update(i + 1)
    iou, miou = iou_from_confusion(matrix)
    names = classes or [str(i) for i in range(num_classes)]
    return {
        "miou": miou,
        "per_class_iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou)},
        "pixel_accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "images": count,
    }


def train_segmenter(
    *,
    model_dir,
    arch="cresnet51_d",
    input_mode="compressed",
    codec_path=None,
    dataset,
    init_classifier=None,
    train_steps=20_000,
    batch_size=10,
    base_lr=1e-3,
    weight_decay=5e-4,
    width=1.0,
    crop_size=320,
    cache=False,
    train_limit=None,
    val_limit=None,
    strategy="default",
    mixed_precision=False,
    tfds_data_dir=None,
    manual_dir=None,
    checkpoint_every=500,
    summary_every=50,
    curve_every_steps=0,
    progress=True,
    seed=0,
):
    """Trains a DeepLab segmenter; returns (model, history, evaluation).

    With `curve_every_steps` > 0, the validation mIoU every that many steps is appended to
    `curve.json` (the paper's Fig. 4 validation curves); resumed runs keep it.
    """
    compressed = input_mode == "compressed"
    if compressed != arch.startswith("c"):
        raise ValueError(f"{arch} does not take {input_mode!r} inputs")
    keras.utils.set_random_seed(seed)
    strat = distribute.make_strategy(strategy)
    policy = distribute.set_precision(mixed_precision)
    codec = load_codec(codec_path, input_mode)
    data = dict(tfds_data_dir=tfds_data_dir, manual_dir=manual_dir)
    encoded = dataset.startswith("store:")

    def examples(split, limit):
        """(image or stored z, mask) of any source, or of a store of one (`store:DIR`)."""
        if not encoded:
            return segmentation.segmentation_dataset(dataset, split, limit=limit, **data)
        if not compressed:
            raise ValueError(
                f"a store holds z: input mode must be 'compressed', not {input_mode!r}"
            )
        ds, count, names = store.store_latents(
            dataset[len("store:") :], split, CodecFiles(codec), masks=True
        )
        return (ds.take(limit), min(limit, count), names) if limit else (ds, count, names)

    train_examples, _, classes = examples("train", train_limit)
    num_classes = len(classes)
    channels = codec.channels if compressed else 3
    classifier = keras.models.load_model(init_classifier) if init_classifier else None

    def build_state():
        model = build_deeplab(arch, num_classes, input_channels=channels, width=width)
        size = crop_size // (8 if compressed else 1)
        model(tf.zeros([1, size, size, channels]))
        if classifier is not None:
            load_backbone(model, classifier)
        elif not compressed:
            model.backbone.set_input_mean(np.array((123.68, 116.78, 103.94), np.float32))
        schedule = keras.optimizers.schedules.PolynomialDecay(
            base_lr, train_steps, end_learning_rate=0.0, power=0.9
        )
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
        return {"model": model, "optimizer": distribute.wrap_optimizer(optimizer)}

    def dataset_fn(context):
        per_replica = context.get_per_replica_batch_size(batch_size)
        ds = segmentation.segmentation_pipeline(
            train_examples,
            input_mode=input_mode,
            codec=codec,
            training=True,
            batch_size=per_replica,
            crop_size=crop_size,
            cache=cache,
            encoded=encoded,
        )
        return ds.shard(context.num_input_pipelines, context.input_pipeline_id)

    def loss_fn(state, batch):
        x, labels = batch
        logits = state["model"](x, training=True)["logits"]
        ce, accuracy = segmentation_loss(logits, labels, num_classes)
        loss = ce + weight_decay * l2_penalty(state["model"])
        return loss, {"cross_entropy": ce, "pixel_accuracy": accuracy}

    def head_multiplier(grads, variables):
        return [
            g * HEAD_LR_MULTIPLIER if "/aspp/" in v.path else g for g, v in zip(grads, variables)
        ]

    val_examples, num_val, _ = examples("val", val_limit)
    val = segmentation.segmentation_pipeline(
        val_examples,
        input_mode=input_mode,
        codec=codec,
        training=False,
        batch_size=1,
        cache=cache,
        encoded=encoded,
    )
    curve_path = os.path.join(model_dir, "curve.json")

    def record_curve(step, state):
        if step % curve_every_steps and step != train_steps:
            return
        point = evaluate_segmenter(state["model"], val, num_classes)
        loop.append_curve(curve_path, step, {"miou": point["miou"]})

    state, history = loop.train(
        strategy=strat,
        build_state=build_state,
        dataset_fn=dataset_fn,
        loss_fn=loss_fn,
        model_dir=model_dir,
        train_steps=train_steps,
        checkpoint_every=checkpoint_every,
        summary_every=summary_every,
        gradient_transform=head_multiplier,
        progress=progress,
        after_step=record_curve if curve_every_steps > 0 else None,
    )
    model = state["model"]
    if not distribute.is_chief(strat):
        return model, history, None
    bar = keras.utils.Progbar(num_val) if progress else None
    evaluation = evaluate_segmenter(model, val, num_classes, list(classes), bar)
    io.save_keras(model, os.path.join(model_dir, "segmenter.keras"))
    info = dict(
        arch=arch,
        input_mode=input_mode,
        codec_path=os.path.abspath(codec_path) if codec else None,
        codec_model_id=model_id(codec).hex() if codec else None,
        classes=list(classes),
        dataset=dataset,
        init_classifier=init_classifier,
        train_steps=train_steps,
        batch_size=batch_size,
        width=width,
        crop_size=crop_size,
        precision=policy,
        final_metrics=history[-1] if history else None,
    )
    io.write_json(info, os.path.join(model_dir, "segmenter.json"))
    io.write_json(evaluation, os.path.join(model_dir, "eval.json"))
    print(json.dumps({"miou": evaluation["miou"]}))
    return model, history, evaluation
