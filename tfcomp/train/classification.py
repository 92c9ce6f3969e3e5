"""Training and evaluating ResNet / cResNet classifiers (paper Section 4.4, Appendix A.4).

The codec is fixed (loaded from `codec_path`); only the classifier trains. SGD with momentum
0.9; lr 0.025 at batch 64, scaled linearly with the batch (Goyal et al., 2017), divided by 10 at
epochs 8, 16 and 24 of 28 (boundaries scale with `epochs`); L2 weight decay 1e-4 on the
convolution and fc kernels (0.5 * wd * |w|^2 added to the loss). Outputs in `model_dir`:
`classifier.keras`, `classifier.json` (architecture, input mode, codec path and model id, class
names, budget) and `eval.json` (top-1 / top-5 on centre crops of the validation split).
"""

import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfcomp import io
from tfcomp.codec.bitstream import model_id
from tfcomp.codec.files import CodecFiles
from tfcomp.codec.model import RGB_MEAN
from tfcomp.data import classification, store
from tfcomp.nets.resnet import build_resnet
from tfcomp.train import distribute, loop

PAPER_EPOCHS = 28
PAPER_BOUNDARIES = (8, 16, 24)
PAPER_BATCH = 64


def learning_rate_schedule(base_lr, batch_size, epochs, steps_per_epoch):
    """Piecewise constant: lr * batch/64, / 10 at 8/28, 16/28 and 24/28 of training."""
    lr = base_lr * batch_size / PAPER_BATCH
    boundaries = [
        max(1, int(round(b * epochs / PAPER_EPOCHS * steps_per_epoch))) for b in PAPER_BOUNDARIES
    ]
    values = [lr * 0.1**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def l2_penalty(model):
    kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
    return 0.5 * tf.add_n([tf.reduce_sum(tf.square(tf.cast(w, tf.float32))) for w in kernels])


def classification_step(model, inputs, labels, weight_decay):
    """Per-replica loss (cross-entropy + L2) and metrics."""
    logits = tf.cast(model(inputs, training=True)["logits"], tf.float32)
    ce = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )
    accuracy = tf.reduce_mean(
        tf.cast(tf.equal(tf.argmax(logits, -1, tf.int32), labels), tf.float32)
    )
    loss = ce + weight_decay * l2_penalty(model)
    return loss, {"cross_entropy": ce, "accuracy": accuracy}


def channel_mean(batches):
    """Per-channel mean over every pixel of an iterable of NHWC batches (sums in float64, so
    batches of different sizes weigh by their pixels)."""
    total, count = 0.0, 0
    for inputs in batches:
        total += tf.reduce_sum(tf.cast(inputs, tf.float64), axis=[0, 1, 2]).numpy()
        count += int(np.prod(inputs.shape[:3]))
    if not count:
        raise ValueError("no inputs to measure the per-channel mean on")
    return (total / count).astype(np.float32)


def input_mean(pipeline, input_mode, batches=20):
    """Per-channel mean of the model inputs: ImageNet's RGB mean, or z's over `batches`."""
    if input_mode != "compressed":
        return np.array(RGB_MEAN, np.float32)
    return channel_mean(inputs for inputs, _ in pipeline.take(batches))


def load_codec(codec_path, input_mode):
    if input_mode == "rgb":
        return None
    if not codec_path or not os.path.isfile(codec_path):
        raise FileNotFoundError(f"input mode {input_mode!r} needs a trained codec: {codec_path!r}")
    return keras.models.load_model(codec_path)


def evaluate_classifier(model, pipeline, progress=None):
    """Top-1 and top-5 accuracy over a finite pipeline of (inputs, labels)."""

    @tf.function
    def predict(inputs):
        return tf.cast(model(inputs, training=False)["logits"], tf.float32)

    top1 = top5 = total = 0
    for i, (inputs, labels) in enumerate(pipeline):
        logits = predict(inputs)
        k = min(5, logits.shape[-1])
        top1 += int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, 1), tf.int32)))
        top5 += int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, k), tf.int32)))
        total += int(labels.shape[0])
        if progress is not None:
            progress.update(i + 1)
    return {"top1": top1 / max(total, 1), "top5": top5 / max(total, 1), "examples": total}


def classifier_inputs(
    dataset,
    split,
    *,
    input_mode,
    codec,
    training,
    batch_size,
    resize=256,
    crop_size=224,
    cache=False,
    limit=None,
    tfds_data_dir=None,
    manual_dir=None,
):
    """(batched pipeline of (inputs, labels), example count, class names) for any source.

    `store:DIR` reads a compressed dataset store: z comes from the stored bitstreams (entropy
    decoding only), so the encoder does not run; the input mode must be `compressed`.
    """
    size = classification.model_crop_size(input_mode, crop_size)
    if dataset.startswith("store:"):
        if input_mode != "compressed":
            raise ValueError(
                f"a store holds z: input mode must be 'compressed', not {input_mode!r}"
            )
        latents, count, classes = store.store_latents(
            dataset[len("store:") :], split, CodecFiles(codec), shuffle=training
        )
        if limit:
            latents, count = latents.take(limit), min(limit, count)
    else:
        examples, count, classes = classification.labelled_dataset(
            dataset, split, tfds_data_dir, manual_dir, shuffle=training, limit=limit
        )
        latents = classification.model_inputs(
            examples, input_mode=input_mode, codec=codec, resize=resize
        )
    pipeline = classification.augment_and_batch(
        latents, size=size, training=training, batch_size=batch_size, cache=cache
    )
    return pipeline, count, classes


def train_classifier(
    *,
    model_dir,
    arch="cresnet51",
    input_mode="compressed",
    codec_path=None,
    dataset,
    epochs=28,
    batch_size=64,
    base_lr=0.025,
    weight_decay=1e-4,
    width=1.0,
    resize=256,
    crop_size=224,
    cache=False,
    train_limit=None,
    val_limit=None,
    strategy="default",
    mixed_precision=False,
    tfds_data_dir=None,
    manual_dir=None,
    checkpoint_every=500,
    summary_every=50,
    curve_every_epochs=0,
    progress=True,
    seed=0,
):
    """Trains a classifier on the input mode's representation; returns (model, history, eval).

    With `curve_every_epochs` > 0, the validation top-1 / top-5 after every that many epochs is
    appended to `curve.json` (the paper's Fig. 3 / 4 validation curves); resumed runs keep it.
    A run resumes from the latest checkpoint in `model_dir`; `train_seconds` in classifier.json
    totals the wall time of every run up to that checkpoint plus this run's.
    """
    if input_mode not in classification.INPUT_MODES:
        raise ValueError(
            f"unknown input mode {input_mode!r}; expected one of {classification.INPUT_MODES}"
        )
    compressed = input_mode == "compressed"
    if compressed != arch.startswith("c"):
        raise ValueError(
            f"{arch} expects {'RGB images' if not arch.startswith('c') else 'the latent z'}; "
            f"input mode {input_mode!r} gives {'z' if compressed else 'images'}"
        )
    keras.utils.set_random_seed(seed)
    strat = distribute.make_strategy(strategy)
    policy = distribute.set_precision(mixed_precision)
    codec = load_codec(codec_path, input_mode)
    inputs_kwargs = dict(
        input_mode=input_mode,
        codec=codec,
        resize=resize,
        crop_size=crop_size,
        tfds_data_dir=tfds_data_dir,
        manual_dir=manual_dir,
    )
    # The full-batch pipeline only serves to count examples and to measure the input mean.
    plain, num_train, classes = classifier_inputs(
        dataset, "train", training=False, batch_size=32, limit=train_limit, **inputs_kwargs
    )
    steps_per_epoch = max(1, num_train // batch_size)
    train_steps = int(math.ceil(epochs * steps_per_epoch))

    def dataset_fn(context):
        per_replica = context.get_per_replica_batch_size(batch_size)
        ds, _, _ = classifier_inputs(
            dataset,
            "train",
            training=True,
            batch_size=per_replica,
            cache=cache,
            limit=train_limit,
            **inputs_kwargs,
        )
        return ds.shard(context.num_input_pipelines, context.input_pipeline_id)

    mean = input_mean(plain, input_mode)
    channels = codec.channels if compressed else 3

    def build_state():
        model = build_resnet(arch, num_classes=len(classes), input_channels=channels, width=width)
        size = classification.model_crop_size(input_mode, crop_size)
        model(tf.zeros([1, size, size, channels]))
        model.set_input_mean(mean)
        schedule = learning_rate_schedule(base_lr, batch_size, epochs, steps_per_epoch)
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
        # The clock rides in the checkpoint, so train_seconds totals every run (resumes).
        return {"model": model, "optimizer": distribute.wrap_optimizer(optimizer), "clock": clock}

    def loss_fn(state, batch):
        inputs, labels = batch
        return classification_step(state["model"], inputs, labels, weight_decay)

    val, num_val, _ = classifier_inputs(
        dataset, "val", training=False, batch_size=batch_size, limit=val_limit, **inputs_kwargs
    )
    curve_path = os.path.join(model_dir, "curve.json")
    curve_steps = max(1, int(round(curve_every_epochs * steps_per_epoch)))

    def record_curve(step, state):
        if step % curve_steps and step != train_steps:
            return
        point = evaluate_classifier(state["model"], val)
        loop.append_curve(curve_path, step, {"epoch": step / steps_per_epoch, **point})

    start = time.time()
    clock = loop.TrainClock(start)
    state, history = loop.train(
        strategy=strat,
        build_state=build_state,
        dataset_fn=dataset_fn,
        loss_fn=loss_fn,
        model_dir=model_dir,
        train_steps=train_steps,
        checkpoint_every=checkpoint_every,
        summary_every=summary_every,
        progress=progress,
        after_step=record_curve if curve_every_epochs > 0 else None,
    )
    now = time.time()
    train_seconds, train_seconds_this_run = clock.seconds(now), now - start
    model = state["model"]
    if not distribute.is_chief(strat):
        return model, history, None
    bar = keras.utils.Progbar(int(math.ceil(num_val / batch_size))) if progress else None
    evaluation = evaluate_classifier(model, val, bar)
    io.save_keras(model, os.path.join(model_dir, "classifier.keras"))
    info = dict(
        arch=arch,
        input_mode=input_mode,
        codec_path=os.path.abspath(codec_path) if codec else None,
        codec_model_id=model_id(codec).hex() if codec else None,
        classes=list(classes),
        dataset=dataset,
        epochs=epochs,
        train_steps=train_steps,
        train_examples=num_train,
        batch_size=batch_size,
        width=width,
        resize=resize,
        crop_size=crop_size,
        precision=policy,
        strategy=strategy,
        train_seconds=train_seconds,
        train_seconds_this_run=train_seconds_this_run,
        resumed_train_seconds=clock.resumed,
        final_metrics=history[-1] if history else None,
    )
    io.write_json(info, os.path.join(model_dir, "classifier.json"))
    io.write_json(evaluation, os.path.join(model_dir, "eval.json"))
    return model, history, evaluation
