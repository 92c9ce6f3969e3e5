"""Training ResNet / cResNet classifiers (paper Section 4.4, Appendix A.4).

`train_classifier(config, model_dir)` trains the network `config.arch` on the input mode's
representation of `config.dataset` (`ClassifierConfig`); the codec is fixed. SGD with momentum,
lr divided by 10 at `lr_drops` of the run (A.4: epochs 8, 16, 24 of 28), L2 weight decay on the
convolution and fc kernels (0.5 * wd * |w|^2 added to the loss), per-channel mean centering
inside the model. Writes `classifier.keras`, `config.json`, `result.json` (top-1 / top-5 on
centre crops of the validation split) and, with `curve_every_epochs`, `curve.json` (Fig. 3).
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from tfcomp.codec.bitstream import model_id
from tfcomp.codec.files import CodecFiles
from tfcomp.codec.model import RGB_MEAN
from tfcomp.data import classification, store
from tfcomp.data.device import CodecInputs, decoder_8_bits
from tfcomp.eval.classification import ClassifierEvaluator
from tfcomp.eval.models import load_codec
from tfcomp.nets import registry
from tfcomp.train import distribute, loop
from tfcomp.train import job as outline


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


def input_mean(pipeline, input_mode, transform=None, batches=20):
    """Per-channel mean of the model inputs: ImageNet's RGB mean, or z's over `batches` of the
    pipeline (`transform(x)` makes the model input, in a compiled function)."""
    if input_mode != "compressed":
        return np.array(RGB_MEAN, np.float32)
    make = tf.function(transform or (lambda x: x), reduce_retracing=True)
    return channel_mean(make(x) for x, _ in pipeline.take(batches))


def codec_for(config):
    """The fixed codec of a reconstructed / compressed config (None for RGB)."""
    if config.input_mode == "rgb":
        return None
    if not config.codec:
        raise ValueError(f"input mode {config.input_mode!r} needs a trained codec (codec=PATH)")
    return load_codec(config.codec)


# The reconstructions `decode_once=None` holds in memory at most (the training split's).
DECODE_ONCE_BYTES = 4 * 2**30


def decodes_once(config):
    """True when a reconstructed-mode classifier or segmenter reads its store's z decoded once
    before training (`decode_once` of its config; None: when the training split's 8-bit
    reconstructions, 3 bytes per stored pixel, fit in `DECODE_ONCE_BYTES`)."""
    if config.input_mode != "reconstructed" or not store.is_store(config.dataset):
        return False
    choice = getattr(config, "decode_once", False)
    if choice is not None:
        return bool(choice)
    return 3 * store.split_pixels(config.dataset, "train", config.train_limit) <= DECODE_ONCE_BYTES


def reconstruct_once(codec, examples, count, batch_size=32, progress=True):
    """(uint8 [N, H, W, 3] reconstructions, labels [N]) of a store split's (z, label)
    examples: each z decoded once, rounded and clipped to 8 bits as a decoded file holds it
    (`tfcomp.data.device.to_8_bits`), in a compiled function, in the store's order."""
    decode = decoder_8_bits(codec)
    bar = keras.utils.Progbar(count, unit_name="image") if progress else None
    images, labels = [], []
    for z, y in examples.batch(batch_size).prefetch(2):
        images.append(decode(z).numpy())
        labels.append(y.numpy())
        if bar is not None:
            bar.add(len(labels[-1]))
    if not images:
        raise ValueError("the store split holds no example to decode")
    return np.concatenate(images), np.concatenate(labels)


def classifier_inputs(config, split, *, codec, training, batch_size, limit, decoded=None):
    """(batched pipeline of (x, labels), example count, class names) for any source.

    `store:DIR` reads a compressed dataset store: z comes from the stored bitstreams (entropy
    decoding only, on the host); the step crops it (compressed) or decodes it (reconstructed).
    From images, x is the resized image; `codec_inputs` says what the step makes of it. With
    `decoded` (a dict, kept by the caller across calls: `decodes_once`), a store's z are
    decoded once per split and limit (`reconstruct_once`) and x is their crop, as for RGB.
    """
    from_store = store.is_store(config.dataset)
    if decoded is not None and from_store:
        key = (split, limit)
        if key not in decoded:
            examples, count, classes = store.read_split(
                config.dataset, split, CodecFiles(codec), limit=limit
            )
            print(f"decoding the {count} stored z of {split!r} once", flush=True)
            decoded[key] = (*reconstruct_once(codec, examples, count), count, classes)
        images, labels, count, classes = decoded[key]
        pipeline = classification.augment_and_batch(
            tf.data.Dataset.from_tensor_slices((images, labels)),
            size=config.crop_size,
            training=training,
            batch_size=batch_size,
            crop_grid=config.crop_grid,
        )
        return pipeline, count, classes
    if from_store:
        if config.input_mode == "rgb":
            raise ValueError("a store holds z: input mode must be compressed or reconstructed")
        examples, count, classes = store.read_split(
            config.dataset, split, CodecFiles(codec), limit=limit, shuffle=training
        )
    else:
        examples, count, classes = classification.labelled(config, split, training, limit)
    pipeline = classification.classification_pipeline(
        examples,
        input_mode=config.input_mode,
        training=training,
        batch_size=batch_size,
        resize=config.resize,
        crop_size=config.crop_size,
        cache=config.cache,
        from_store=from_store,
        crop_grid=config.crop_grid,
    )
    return pipeline, count, classes


def codec_inputs(config, codec, decoded=False):
    """The step's part of the model input (`tfcomp.data.device.CodecInputs`) for a config;
    `decoded`: the batches hold reconstructions decoded once, which the step takes as they are."""
    if decoded:
        return CodecInputs("rgb", None, config.crop_size, False)
    from_store = store.is_store(config.dataset)
    return CodecInputs(config.input_mode, codec, config.crop_size, from_store, config.crop_grid)


def lr_schedule(config, steps_per_epoch):
    """The config's lr, divided by 10 at its fractions `lr_drops` of the epochs."""
    total = config.epochs * steps_per_epoch
    return outline.lr_drop_schedule(config.learning_rate, config.lr_drops, total)


def sgd(config, steps_per_epoch):
    """SGD with momentum on `lr_schedule`."""
    schedule = lr_schedule(config, steps_per_epoch)
    return distribute.wrap_optimizer(keras.optimizers.SGD(schedule, momentum=config.momentum))


def network_card(config, codec, classes, arch=None):
    """The model card of a classifier or segmenter (`tfcomp.eval.models`)."""
    return {
        "arch": arch or config.arch,
        "input_mode": config.input_mode,
        "codec": os.path.abspath(config.codec) if codec is not None else None,
        "codec_model_id": model_id(codec).hex() if codec is not None else None,
        "classes": list(classes),
    }


def train_classifier(config, model_dir, progress=True):
    """Trains a classifier under `config` (a `ClassifierConfig`); returns the `job.Outcome`.

    A run resumes from the latest checkpoint in `model_dir`; the validation curve of
    `curve_every_epochs` survives resumes.
    """
    return outline.run(config, model_dir, ClassifierTask, progress=progress)


class ClassifierTask(outline.Task):
    """Classification on the input mode's representation; the codec is fixed and runs in the
    step (`tfcomp.data.device`), never in the input pipeline."""

    def __init__(self, config, strategy, model_dir):
        super().__init__(config, strategy, model_dir)
        self.spec = registry.check_input(config.arch, config.input_mode, dilated=False)
        self.codec = codec_for(config)  # for evaluation on the chief; the step has its own
        # Reconstructions decoded once, per (split, limit), when the config says so.
        self.decoded = {} if decodes_once(config) else None
        self.host_inputs = codec_inputs(config, self.codec, self.decoded is not None)
        # Counts the examples and measures the input mean (z's is measured, not assumed).
        plain, num_train, self.classes = self.inputs("train", False, 32, config.train_limit)
        self.steps_per_epoch = max(1, num_train // config.batch_size)
        self.train_steps = int(math.ceil(config.epochs * self.steps_per_epoch))
        self.mean = input_mean(plain, config.input_mode, self.eval_inputs)
        self.val, self.num_val, _ = self.inputs("val", False, config.batch_size, config.val_limit)
        every = config.curve_every_epochs * self.steps_per_epoch
        self.curve = loop.Curve(
            strategy,
            path=os.path.join(model_dir, "curve.json"),
            every=max(1, round(every)) if every > 0 else 0,
            last=self.train_steps,
            evaluate=lambda state, step: self.evaluate(),
            point=lambda step: {"epoch": step / self.steps_per_epoch},
        )

    def evaluate(self, progress=None):
        """Scores of the model being trained on the validation split."""
        return self.evaluator(self.val, progress)

    def eval_inputs(self, x):
        return self.host_inputs(x, training=False)

    def inputs(self, split, training, batch_size, limit):
        return classifier_inputs(
            self.config, split, codec=self.codec, training=training, batch_size=batch_size,
            limit=limit, decoded=self.decoded,
        )  # fmt: skip

    def build_state(self):
        c = self.config
        # The step's codec: built here, under the strategy's scope, on every replica's device.
        decoded = self.decoded is not None
        codec = load_codec(c.codec) if c.input_mode != "rgb" and not decoded else None
        self.step_inputs = codec_inputs(c, codec, decoded)
        channels = self.codec.channels if c.input_mode == "compressed" else 3
        sync = c.sync_batch_norm and self.strategy.num_replicas_in_sync > 1
        model = registry.build(self.spec.name, len(self.classes), channels, c.width, sync)
        size = classification.model_crop_size(c.input_mode, c.crop_size)
        model(tf.zeros([1, size, size, channels]))
        model.set_input_mean(self.mean)
        self.evaluator = ClassifierEvaluator(model, self.eval_inputs)  # traced once, reused
        return {"model": model, "optimizer": sgd(c, self.steps_per_epoch)}

    def dataset(self, batch_size):
        return self.inputs("train", True, batch_size, self.config.train_limit)[0]

    def loss(self, state, batch):
        x, labels = batch
        inputs = self.step_inputs(x, training=True)
        return classification_step(state["model"], inputs, labels, self.config.weight_decay)

    def after_step(self, before, step, state, metrics):
        self.curve.after_step(before, step, state)

    def finish(self, state, progress):
        metrics = self.curve.at(self.train_steps)
        if metrics is None:
            batches = math.ceil(self.num_val / self.config.batch_size)
            metrics = self.evaluate(keras.utils.Progbar(batches) if progress else None)
        card = network_card(self.config, self.codec, self.classes)
        return outline.Finished(models={"classifier": (state["model"], card)}, metrics=metrics)
