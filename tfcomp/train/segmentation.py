"""Training DeepLab on RGB, reconstructed or compressed inputs (paper Section 5.3, A.5).

`train_segmenter(config, model_dir)` (`SegmenterConfig`): SGD with momentum, lr x (1 -
step/max)^0.9 with `head_lr_multiplier` (10x) on the final (ASPP) layer, applied as a gradient
multiplier; L2 weight decay; cross-entropy over pixels that are not the ignore label (255). The
backbone starts from a classification network of the same architecture when `init_classifier`
names one. With `class_weighting=median_frequency` each class's pixels weigh median(f) / f(c)
in the loss (class_weights.json holds them and the counts they come from). Reconstructed
inputs from a store are decoded once before training when `decode_once` says so
(`classification.decodes_once`) and then cropped like RGB images, at any pixel (in the step, z
is cut at multiples of 8 pixels). Writes `segmenter.keras`, `config.json`, `result.json` (mIoU
and per-class IoU over whole validation images, `tfcomp.eval.segmentation`), with
`curve_every_steps` `curve.json` (Fig. 4), and with `example_images` its Fig. 5 panels of the
validation images of the store's source in `examples/` (`write_examples`).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfcomp import io
from tfcomp.codec.files import CodecFiles
from tfcomp.codec.model import RGB_MEAN
from tfcomp.data import segmentation, store
from tfcomp.data.device import SegmentationInputs, decoder_8_bits
from tfcomp.eval.models import load_codec, load_keras
from tfcomp.eval.segmentation import SegmenterEvaluator, write_examples
from tfcomp.nets import registry
from tfcomp.nets.deeplab import freeze_batch_norm, load_backbone, upsample
from tfcomp.train import distribute, loop
from tfcomp.train import job as outline
from tfcomp.train.classification import codec_for, decodes_once, l2_penalty, network_card


def segmentation_loss(logits, labels, class_weights=None):
    """Cross-entropy over non-ignored pixels, their mean weighted by `class_weights[label]`
    when given (float [K]; sum of weighted terms over the sum of weights), and pixel accuracy;
    logits are upsampled to the labels' size."""
    logits = upsample(logits, tf.shape(labels)[1:3])
    valid = tf.not_equal(labels, segmentation.IGNORE)
    safe = tf.where(valid, labels, tf.zeros_like(labels))
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    valid = tf.cast(valid, tf.float32)
    count = tf.maximum(tf.reduce_sum(valid), 1.0)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, tf.int32), labels), tf.float32) * valid
    weights = valid
    if class_weights is not None:
        weights = valid * tf.gather(tf.constant(class_weights, tf.float32), safe)
    total = tf.maximum(tf.reduce_sum(weights), 1e-12)
    return tf.reduce_sum(ce * weights) / total, tf.reduce_sum(correct) / count


def segmentation_examples(config, split, codec, limit):
    """(image or stored z, mask) of any source, or of a store of one (`store:DIR`)."""
    if not store.is_store(config.dataset):
        return segmentation.segmentation_dataset(
            config.dataset, split, config.tfds_data_dir, config.manual_dir, limit=limit
        )
    if config.input_mode == "rgb":
        raise ValueError("a store holds z: input mode must be compressed or reconstructed")
    return store.read_split(config.dataset, split, CodecFiles(codec), limit=limit, masks=True)


def reconstruct_examples(codec, examples, count, split, progress=True):
    """(uint8 reconstruction [H, W, 3], mask [H, W, 1]) of a store's (z, mask) examples, each z
    decoded once, rounded and clipped to 8 bits and cut to its mask's size, as the step cuts a
    whole decoded image (`tfcomp.data.device.SegmentationInputs`); held in memory."""
    decode = decoder_8_bits(codec)
    print(f"decoding the {count} stored z of {split!r} once", flush=True)
    bar = keras.utils.Progbar(count, unit_name="image") if progress else None
    pairs = []
    for z, mask in examples:
        pairs.append((decode(z[None])[0].numpy()[: mask.shape[0], : mask.shape[1]], mask.numpy()))
        if bar is not None:
            bar.add(1)
    if not pairs:
        raise ValueError("the store split holds no example to decode")
    return tf.data.Dataset.from_generator(
        lambda: iter(pairs),
        output_signature=(
            tf.TensorSpec([None, None, 3], tf.uint8),
            tf.TensorSpec([None, None, 1], tf.uint8),
        ),
    )


def train_segmenter(config, model_dir, progress=True):
    """Trains a segmenter under `config` (a `SegmenterConfig`); returns the `job.Outcome`."""
    return outline.run(config, model_dir, SegmenterTask, progress=progress)


class SegmenterTask(outline.Task):
    """DeepLab-v2 on the input mode's representation; the codec is fixed and runs in the step
    (`tfcomp.data.device`), never in the input pipeline."""

    def __init__(self, config, strategy, model_dir):
        super().__init__(config, strategy, model_dir)
        self.spec = registry.check_input(config.arch, config.input_mode, dilated=True)
        self.codec = codec_for(config)  # for evaluation on the chief; the step has its own
        self.from_store = store.is_store(config.dataset)
        # Reconstructions decoded once: the step and the pipeline then treat them as RGB.
        self.decoded = decodes_once(config)
        self.step_mode = ("rgb", False) if self.decoded else (config.input_mode, self.from_store)
        self.host_inputs = SegmentationInputs(self.step_mode[0], self.codec, self.step_mode[1])
        self.train_examples, num_train, self.classes = segmentation_examples(
            config, "train", self.codec, config.train_limit
        )
        val_examples, self.num_val, _ = segmentation_examples(
            config, "val", self.codec, config.val_limit
        )
        if self.decoded:
            self.train_examples = reconstruct_examples(
                self.codec, self.train_examples, num_train, "train"
            )
            val_examples = reconstruct_examples(self.codec, val_examples, self.num_val, "val")
        self.class_weights = self.weigh_classes()
        self.classifier = (
            load_keras(config.init_classifier, "classifier") if config.init_classifier else None
        )
        mode, from_store = self.step_mode
        self.pipeline = dict(input_mode=mode, cache=config.cache, from_store=from_store)
        self.val = segmentation.segmentation_pipeline(
            val_examples, training=False, batch_size=config.batch_size, **self.pipeline
        )
        self.train_steps = config.train_steps
        self.curve = loop.Curve(
            strategy,
            path=os.path.join(model_dir, "curve.json"),
            every=config.curve_every_steps,
            last=config.train_steps,
            evaluate=lambda state, step: self.evaluate(),
            # Per-class IoU too: the budget at which thin classes leave 0 IoU is read off it.
            fields=("miou", "per_class_iou"),
        )

    def weigh_classes(self):
        """The loss's per-class weights (None: unweighted), written to class_weights.json."""
        weighting = self.config.class_weighting
        if weighting == "none":
            return None
        pixels, image_pixels = segmentation.class_pixel_counts(
            self.train_examples, len(self.classes)
        )
        weights = segmentation.class_weights(weighting, pixels, image_pixels)
        if self.chief:
            os.makedirs(self.model_dir, exist_ok=True)
            record = dict(
                weighting=weighting,
                classes=list(self.classes),
                weights=weights.tolist(),
                pixels=pixels.tolist(),
                image_pixels=image_pixels.tolist(),
            )
            io.write_json(record, os.path.join(self.model_dir, "class_weights.json"))
        return weights

    def evaluate(self, progress=None):
        """Scores of the model being trained on the validation split."""
        return self.evaluator(self.val, progress)

    def build_state(self):
        c = self.config
        # The step's codec: built here, under the strategy's scope, on every replica's device.
        mode, from_store = self.step_mode
        codec = load_codec(c.codec) if mode != "rgb" else None
        self.step_inputs = SegmentationInputs(mode, codec, from_store)
        compressed = c.input_mode == "compressed"
        channels = self.codec.channels if compressed else 3
        model = registry.build(self.spec.name, len(self.classes), channels, c.width)
        size = c.crop_size // (8 if compressed else 1)
        model(tf.zeros([1, size, size, channels]))
        if self.classifier is not None:
            load_backbone(model, self.classifier)
        elif not compressed:
            model.backbone.set_input_mean(np.array(RGB_MEAN, np.float32))
        if c.freeze_batch_norm:
            freeze_batch_norm(model)
        self.evaluator = SegmenterEvaluator(  # traced once, reused by every evaluation
            model,
            len(self.classes),
            list(self.classes),
            transform=lambda x, mask: self.host_inputs(x, mask, training=False),
        )
        schedule = keras.optimizers.schedules.PolynomialDecay(
            c.learning_rate, max(1, c.train_steps), end_learning_rate=0.0, power=c.lr_power
        )
        optimizer = keras.optimizers.SGD(schedule, momentum=c.momentum)
        return {"model": model, "optimizer": distribute.wrap_optimizer(optimizer)}

    def dataset(self, batch_size):
        return segmentation.segmentation_pipeline(
            self.train_examples,
            training=True,
            batch_size=batch_size,
            crop_size=self.config.crop_size,
            **self.pipeline,
        )

    def loss(self, state, batch):
        x, labels = self.step_inputs(*batch, training=True)
        logits = state["model"](x, training=True)["logits"]
        ce, accuracy = segmentation_loss(logits, labels, self.class_weights)
        loss = ce + self.config.weight_decay * l2_penalty(state["model"])
        return loss, {"cross_entropy": ce, "pixel_accuracy": accuracy}

    def gradient_transform(self, grads, variables):
        """The final (ASPP) layer learns `head_lr_multiplier` times faster (A.5)."""
        multiplier = self.config.head_lr_multiplier
        return [g * multiplier if "/aspp/" in v.path else g for g, v in zip(grads, variables)]

    def after_step(self, before, step, state, metrics):
        self.curve.after_step(before, step, state)

    def finish(self, state, progress):
        metrics = self.curve.at(self.train_steps)
        if metrics is None:
            bar = keras.utils.Progbar(self.num_val) if progress else None
            metrics = self.evaluate(bar)
        self.save_examples(state["model"])
        card = network_card(self.config, self.codec, self.classes)
        return outline.Finished(models={"segmenter": (state["model"], card)}, metrics=metrics)

    def save_examples(self, model):
        """Fig. 5's panels of `example_images` whole validation images spread over the data's
        source (a store's: the images it was made from), as `experiments.eval_segmentation`
        draws them from weights."""
        c = self.config
        if not c.example_images:
            return
        source, mode, codec = store.source_of(c.dataset), c.input_mode, self.codec
        images = c.example_images
        write_examples(
            self.model_dir, model, mode, codec, source, "val", images, c.tfds_data_dir, c.manual_dir
        )
