"""Joint finetuning of the codec and a cResNet classifier (paper Section 6, Appendix A.8).

Eq. (2):  L = gamma * (MSE(x, x_hat) + beta * max(H - H_t, 0)) + cross-entropy(y, classifier(z))

The image goes through the encoder and quantizer once; z feeds both the decoder (MSE) and the
classifier (cross-entropy), so the classification loss reaches the encoder through the
quantizer's soft backward pass. One trainer covers the paper's three finetunings by what trains
(`JointConfig.mode`):

    joint            codec and classifier, Eq. (2)                      (Section 6.1)
    codec_only       the codec alone, gamma * Eq. (1), same schedule    (the control's new
                                                                         operating point)
    classifier_only  the classifier alone on the fixed codec's z        (the control's "9 more
                                                                         epochs")

Both networks start from trained files; beta, H_t and range_weight default to the codec's own
config. The finetuned codec gets new entropy-coding tables (its symbol statistics changed), so
it is a new model file with a new model id. Writes codec.keras, classifier.keras (not in
codec_only), config.json and result.json: top-1 / top-5 on centre crops of the validation split
and the codec's real file rate and quality on validation images (`tfcomp.eval.compression`).
"""

import dataclasses
import math
import os

import tensorflow as tf

from tfcomp import configs
from tfcomp.codec.bitstream import model_id
from tfcomp.codec.files import fit_entropy_model
from tfcomp.data import classification
from tfcomp.eval.classification import evaluate_classifier
from tfcomp.eval.compression import evaluate_codec
from tfcomp.eval.models import float32_codec, load_codec, load_keras
from tfcomp.train import job as outline
from tfcomp.train.classification import (
    classification_step,
    classifier_inputs,
    codec_inputs,
    network_card,
    sgd,
)
from tfcomp.train.compression import compression_terms

MODES = ("joint", "codec_only", "classifier_only")


def image_crops(config, split, *, batch_size, training, limit):
    """Batches of (uint8 images [N, crop, crop, 3], labels): resize square, then random crop +
    mirror (training) or centre crop, as the classifier pipeline does before the codec."""
    examples, count, classes = classification.labelled(config, split, training, limit)
    ds = examples.map(lambda x, y: (classification.resize_square(x, config.resize), y))
    ds = classification.augment_and_batch(
        ds, size=config.crop_size, training=training, batch_size=batch_size
    )
    return ds, count, classes


def joint_step(
    codec, classifier, images, labels, *, mode, gamma, beta, target, weight_decay, range_weight=0.0
):
    """Per-replica loss of the mode and its metrics. The compression term is the codec
    trainer's (`compression_terms`: Eq. (1), plus `range_weight` times `range_excess` where it is
    not 0), with its metrics (the channels one-hot among them)."""
    train_codec = mode != "classifier_only"
    outputs = codec(images, training=train_codec)
    codec_loss, metrics = compression_terms(codec, outputs, images, beta, target, range_weight)
    if mode == "codec_only":
        return gamma * codec_loss, metrics
    z = outputs["z"] if train_codec else tf.stop_gradient(outputs["z"])
    ce_loss, ce_metrics = classification_step(classifier, z, labels, weight_decay)
    metrics.update(ce_metrics)
    if mode == "classifier_only":
        return ce_loss, metrics
    return gamma * codec_loss + ce_loss, metrics


def with_codec_rate_settings(config):
    """The config with beta, H_t and range_weight taken from the codec's own config.json where
    not given (None)."""
    missing = [n for n in configs.CODEC_RATE_SETTINGS if getattr(config, n) is None]
    if not missing:
        return config
    path = os.path.join(os.path.dirname(config.codec), "config.json")
    if not os.path.isfile(path):
        raise ValueError(
            f"{' and '.join(missing)} not given and {path} (the codec's config) is missing"
        )
    codec_config = configs.load(path)
    return dataclasses.replace(config, **{n: getattr(codec_config, n) for n in missing})


def _check(config):
    if config.mode not in MODES:
        raise ValueError(f"unknown mode {config.mode!r}; expected one of {MODES}")
    for name, path in (("codec", config.codec), ("classifier", config.classifier)):
        if (name == "codec" or config.mode != "codec_only") and not (path and os.path.isfile(path)):
            raise FileNotFoundError(f"mode {config.mode!r} needs a trained {name} file: {path!r}")


class JointTask(outline.Task):
    """Eq. (2), or one of the control's finetunings, from trained codec and classifier."""

    def __init__(self, config, strategy, model_dir):
        super().__init__(config, strategy, model_dir)
        _check(config)
        self.train_codec = config.mode != "classifier_only"
        self.train_classifier = config.mode != "codec_only"
        _, num_train, self.classes = classification.labelled(
            config, "train", limit=config.train_limit
        )
        self.steps_per_epoch = max(1, num_train // config.batch_size)
        self.train_steps = int(math.ceil(config.epochs * self.steps_per_epoch))

    def build_state(self):
        c = self.config
        state = {"model": load_codec(c.codec), "optimizer": sgd(c, self.steps_per_epoch)}
        self.codec_variables = {id(v) for v in state["model"].trainable_variables}
        if c.classifier:
            classifier = load_keras(c.classifier, "classifier")
            if classifier.num_classes != len(self.classes):
                raise ValueError(
                    f"{c.classifier} has {classifier.num_classes} classes, the dataset "
                    f"{c.dataset!r} has {len(self.classes)}"
                )
            state["classifier"] = classifier
        return state

    def variables(self, state):
        variables = list(state["model"].trainable_variables) if self.train_codec else []
        if self.train_classifier:
            variables += state["classifier"].trainable_variables
        return variables

    def gradient_transform(self, grads, variables):
        """The codec learns `codec_lr_multiplier` times A.8's lr (under SGD with momentum, and
        L2 in the loss, scaling a variable's gradient is scaling its lr)."""
        multiplier = self.config.codec_lr_multiplier
        if multiplier == 1.0 or not self.train_codec:
            return grads
        return [
            g * multiplier if id(v) in self.codec_variables else g for g, v in zip(grads, variables)
        ]

    def dataset(self, batch_size):
        return image_crops(
            self.config,
            "train",
            batch_size=batch_size,
            training=True,
            limit=self.config.train_limit,
        )[0]

    def loss(self, state, batch):
        c = self.config
        return joint_step(
            state["model"],
            state.get("classifier"),
            *batch,
            mode=c.mode,
            gamma=c.gamma,
            beta=c.beta,
            target=c.target_entropy,
            weight_decay=c.weight_decay,
            range_weight=c.range_weight,
        )

    def finish(self, state, progress):
        # The codec as it is saved and read (float32, `float32_codec`): its tables, its metrics
        # and the classifier's z computed so, as a store of it would give them.
        codec, classifier = float32_codec(state["model"]), state.get("classifier")
        if self.train_codec:
            # New tables for the real entropy coder: symbol counts over (up to) the config's
            # batches, as after training a codec alone.
            crops = dict(batch_size=32, training=False, limit=self.config.train_limit)
            fit_data, _, _ = image_crops(self.config, "train", **crops)
            fit_entropy_model(codec, (x for x, _ in fit_data.take(self.config.entropy_fit_batches)))
        codec_card = {
            "model_id": model_id(codec).hex(),
            "channels": codec.channels,
            "num_centers": codec.num_centers,
        }
        models = {"codec": (codec, codec_card)}
        metrics = {"codec": codec_metrics(self.config, codec)}
        if classifier is not None:
            metrics.update(self.evaluate_classifier(classifier, codec))
            card = network_card(self.evaluation_config(), codec, self.classes, classifier.name)
            models["classifier"] = (classifier, card)
        return outline.Finished(models=models, metrics=metrics)

    def evaluation_config(self):
        """The classifier's evaluation as the classifier trainer's, on z of the new codec."""
        c = self.config
        return configs.ClassifierConfig(
            dataset=c.dataset,
            tfds_data_dir=c.tfds_data_dir,
            manual_dir=c.manual_dir,
            input_mode="compressed",
            codec=os.path.join(self.model_dir, "codec.keras"),
            resize=c.resize,
            crop_size=c.crop_size,
        )

    def evaluate_classifier(self, classifier, codec):
        config = self.evaluation_config()
        inputs = codec_inputs(config, codec)
        val, _, _ = classifier_inputs(
            config,
            "val",
            codec=codec,
            training=False,
            batch_size=self.config.batch_size,
            limit=self.config.val_limit,
        )
        return evaluate_classifier(classifier, val, transform=lambda x: inputs(x, training=False))


def codec_metrics(config, codec):
    """Mean real file rate and quality of the codec on up to `codec_eval_limit` validation
    images, resized square as the classifier reads them."""
    examples, _, _ = classification.labelled(config, "val", limit=config.codec_eval_limit)
    images = examples.map(lambda x, y: classification.resize_square(x, config.resize))
    named = [(f"val_{i:05d}", image.numpy()) for i, image in enumerate(images)]
    evaluation = evaluate_codec(codec, named)
    return {
        **evaluation["mean"],
        "constant_channels": evaluation["constant_channels"],
        "images": len(named),
        "model_id": evaluation["model_id"],
    }


def train_joint(config, model_dir, progress=True):
    """Finetunes per `config.mode` (a `JointConfig`); returns the `job.Outcome`."""
    config = with_codec_rate_settings(config)
    return outline.run(config, model_dir, JointTask, progress=progress)
