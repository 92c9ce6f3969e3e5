"""Joint finetuning of the codec and a cResNet classifier (paper Section 6, Appendix A.8).

Eq. (2):  L = gamma * (MSE(x, x_hat) + beta * max(H - H_t, 0)) + cross-entropy(y, classifier(z))

The image goes through the encoder and quantizer once; z feeds both the decoder (MSE) and the
classifier (cross-entropy), so the classification loss reaches the encoder through the
quantizer's soft backward pass. One function covers the paper's three finetunings by what trains:

    joint            codec and classifier, Eq. (2)                      (Section 6.1)
    codec_only       the codec alone, gamma * Eq. (1), same schedule    (the control's new
                                                                         operating point)
    classifier_only  the classifier alone on the fixed codec's z        (the control's "9 more
                                                                         epochs", and fixed-codec
                                                                         training in general)

Schedule (A.8): SGD momentum 0.9, lr 0.0025 (at batch 64, scaled linearly with the batch), / 10
every 3 of 9 epochs (boundaries scale with `epochs`), L2 1e-4 on the classifier's kernels. Both
networks start from trained files; the finetuned codec gets new entropy-coding tables (its
symbol statistics changed) and keeps every file format property of a codec trained alone.
Outputs in `model_dir`: codec.keras, classifier.keras, joint.json, eval.json (top-1 / top-5 on
centre crops of the validation split, plus the finetuned codec's bpp estimate and PSNR on it).
"""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfcomp import io
from tfcomp.codec import compression_loss
from tfcomp.codec.bitstream import model_id
from tfcomp.codec.files import fit_entropy_model
from tfcomp.codec.losses import psnr_from_mse
from tfcomp.data import classification
from tfcomp.train import distribute, loop
from tfcomp.train.classification import (
    classification_step,
    classifier_inputs,
    evaluate_classifier,
)

MODES = ("joint", "codec_only", "classifier_only")
PAPER_EPOCHS = 9
PAPER_STEP_EVERY = 3  # epochs between lr drops
ENTROPY_FIT_BATCHES = 50


def joint_schedule(base_lr, batch_size, epochs, steps_per_epoch):
    """lr * batch/64, divided by 10 every epochs/3 epochs (every 3 of the paper's 9)."""
    lr = base_lr * batch_size / 64
    every = epochs * PAPER_STEP_EVERY / PAPER_EPOCHS * steps_per_epoch
    boundaries = [max(1, int(round(every * i))) for i in (1, 2)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, [lr, lr / 10, lr / 100])


def image_crops(dataset, split, *, resize, crop_size, batch_size, training, limit, **data):
    """Batches of (uint8 images [N, crop, crop, 3], labels): resize square, then random crop +
    mirror (training) or centre crop, as the classifier pipeline does before the codec."""
    examples, count, classes = classification.labelled_dataset(
        dataset, split, shuffle=training, limit=limit, **data
    )
    ds = examples.map(lambda x, y: (classification.resize_square(x, resize), y))
    ds = classification.augment_and_batch(
        ds, size=crop_size, training=training, batch_size=batch_size
    )
    return ds, count, classes


def joint_step(codec, classifier, images, labels, *, mode, gamma, beta, target, weight_decay):
    """Per-replica loss of the mode and its metrics."""
    train_codec = mode != "classifier_only"
    outputs = codec(images, training=train_codec)
    terms = compression_loss(outputs, images, beta, target)
    metrics = {
        "mse": terms["mse"],
        "entropy": outputs["entropy"],
        "bpp": outputs["bpp"],
    }
    if mode == "codec_only":
        return gamma * terms["loss"], metrics
    z = outputs["z"] if train_codec else tf.stop_gradient(outputs["z"])
    ce_loss, ce_metrics = classification_step(classifier, z, labels, weight_decay)
    metrics.update(ce_metrics)
    if mode == "classifier_only":
        return ce_loss, metrics
    return gamma * terms["loss"] + ce_loss, metrics


def train_joint(
    *,
    model_dir,
    codec_path,
    classifier_path=None,
    dataset,
    mode="joint",
    gamma=0.001,
    beta=600.0,
    target_entropy=0.8,
    epochs=9,
    batch_size=64,
    base_lr=0.0025,
    weight_decay=1e-4,
    resize=256,
    crop_size=224,
    train_limit=None,
    val_limit=None,
    strategy="default",
    mixed_precision=False,
    tfds_data_dir=None,
    manual_dir=None,
    checkpoint_every=500,
    summary_every=50,
    progress=True,
    seed=0,
):
    """Finetunes per `mode` (see module docstring); returns (codec, classifier, history, eval)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    for name, path in (("codec", codec_path), ("classifier", classifier_path)):
        if (name == "codec" or mode != "codec_only") and not (path and os.path.isfile(path)):
            raise FileNotFoundError(f"mode {mode!r} needs a trained {name} file: {path!r}")
    keras.utils.set_random_seed(seed)
    strat = distribute.make_strategy(strategy)
    policy = distribute.set_precision(mixed_precision)
    data = dict(tfds_data_dir=tfds_data_dir, manual_dir=manual_dir)
    _, num_train, classes = classification.labelled_dataset(
        dataset, "train", limit=train_limit, **data
    )
    steps_per_epoch = max(1, num_train // batch_size)
    train_steps = int(math.ceil(epochs * steps_per_epoch))

    def build_state():
        codec = keras.models.load_model(codec_path)
        classifier = keras.models.load_model(classifier_path) if classifier_path else None
        if classifier is not None and classifier.num_classes != len(classes):
            raise ValueError(
                f"{classifier_path} has {classifier.num_classes} classes, the dataset "
                f"{dataset!r} has {len(classes)}"
            )
        schedule = joint_schedule(base_lr, batch_size, epochs, steps_per_epoch)
        optimizer = distribute.wrap_optimizer(keras.optimizers.SGD(schedule, momentum=0.9))
        # The clock rides in the checkpoint, so train_seconds totals every run (resumes).
        state = {"model": codec, "optimizer": optimizer, "clock": clock}
        if classifier is not None:
            state["classifier"] = classifier
        return state

    def variables_fn(state):
        variables = []
        if mode != "classifier_only":
            variables += state["model"].trainable_variables
        if mode != "codec_only":
            variables += state["classifier"].trainable_variables
        return variables

    def dataset_fn(context):
        per_replica = context.get_per_replica_batch_size(batch_size)
        ds, _, _ = image_crops(
            dataset,
            "train",
            resize=resize,
            crop_size=crop_size,
            batch_size=per_replica,
            training=True,
            limit=train_limit,
            **data,
        )
        return ds.shard(context.num_input_pipelines, context.input_pipeline_id)

    def loss_fn(state, batch):
        images, labels = batch
        return joint_step(
            state["model"],
            state.get("classifier"),
            images,
            labels,
            mode=mode,
            gamma=gamma,
            beta=beta,
            target=target_entropy,
            weight_decay=weight_decay,
        )

    start = time.time()
    clock = loop.TrainClock(start)
    state, history = loop.train(
        strategy=strat,
        build_state=build_state,
        dataset_fn=dataset_fn,
        loss_fn=loss_fn,
        variables_fn=variables_fn,
        model_dir=model_dir,
        train_steps=train_steps,
        checkpoint_every=checkpoint_every,
        summary_every=summary_every,
        progress=progress,
    )
    now = time.time()
    train_seconds, train_seconds_this_run = clock.seconds(now), now - start
    codec, classifier = state["model"], state.get("classifier")
    if not distribute.is_chief(strat):
        return codec, classifier, history, None
    crops = dict(resize=resize, crop_size=crop_size, limit=train_limit, **data)
    if mode != "classifier_only":
        fit_data, _, _ = image_crops(dataset, "train", batch_size=32, training=False, **crops)
        # New tables for the real entropy coder: symbol counts over (up to) 50 batches, as
        # after training a codec alone.
        fit_entropy_model(codec, (images for images, _ in fit_data.take(ENTROPY_FIT_BATCHES)))
    evaluation = {"codec": evaluate_codec_on(codec, dataset, val_limit, resize, data)}
    if classifier is not None:
        val, _, _ = classifier_inputs(
            dataset,
            "val",
            input_mode="compressed",
            codec=codec,
            training=False,
            batch_size=batch_size,
            resize=resize,
            crop_size=crop_size,
            limit=val_limit,
            **data,
        )
        evaluation.update(evaluate_classifier(classifier, val))
        io.save_keras(classifier, os.path.join(model_dir, "classifier.keras"))
    io.save_keras(codec, os.path.join(model_dir, "codec.keras"))
    info = dict(
        mode=mode,
        codec_init=os.path.abspath(codec_path),
        classifier_init=os.path.abspath(classifier_path) if classifier_path else None,
        codec_model_id=model_id(codec).hex(),
        classes=list(classes),
        dataset=dataset,
        gamma=gamma,
        beta=beta,
        target_entropy=target_entropy,
        epochs=epochs,
        train_steps=train_steps,
        batch_size=batch_size,
        base_lr=base_lr,
        resize=resize,
        crop_size=crop_size,
        precision=policy,
        strategy=strategy,
        train_seconds=train_seconds,
        train_seconds_this_run=train_seconds_this_run,
        resumed_train_seconds=clock.resumed,
        final_metrics=history[-1] if history else None,
    )
    if classifier is not None:
        # The classifier.json fields the classifier tools read (tfcomp classify, evaluation).
        info.update(
            arch=_classifier_arch(classifier_path),
            input_mode="compressed",
            codec_path=os.path.abspath(os.path.join(model_dir, "codec.keras")),
        )
        io.write_json(info, os.path.join(model_dir, "classifier.json"))
    io.write_json(info, os.path.join(model_dir, "joint.json"))
    io.write_json(evaluation, os.path.join(model_dir, "eval.json"))
    return codec, classifier, history, evaluation


def evaluate_codec_on(codec, dataset, limit, resize, data):
    """Mean estimated bpp, hard entropy and PSNR of the codec over the validation images."""
    examples, _, _ = classification.labelled_dataset(dataset, "val", limit=limit, **data)
    ds = examples.map(lambda x, y: classification.resize_square(x, resize)).batch(16)
    mse, bpp, hard, count = 0.0, 0.0, 0.0, 0

    @tf.function
    def run(images):
        out = codec(images)
        x_hat = tf.clip_by_value(tf.round(out["x_hat"]), 0, 255)
        err = tf.reduce_mean(tf.square(x_hat - tf.cast(images, tf.float32)), axis=[1, 2, 3])
        return err, out["bpp"], out["entropy_hard"]

    for images in ds:
        err, b, h = run(images)
        n = int(images.shape[0])
        mse += float(tf.reduce_sum(err))
        bpp, hard, count = bpp + float(b) * n, hard + float(h) * n, count + n
    mse /= max(count, 1)
    return {
        "bpp_estimate": bpp / max(count, 1),
        "entropy_hard": hard / max(count, 1),
        "psnr": float(psnr_from_mse(np.float32(mse))),
        "images": count,
    }


def _classifier_arch(classifier_path):
    """The architecture name recorded beside a trained classifier (classifier.json)."""
    path = os.path.join(os.path.dirname(classifier_path), "classifier.json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f).get("arch")
    return None
