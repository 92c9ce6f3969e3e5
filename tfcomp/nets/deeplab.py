"""DeepLab-v2 segmentation on ResNet-d / cResNet-d backbones (paper Section 5.1, A.5).

    x (RGB h x w, or z h/8 x w/8 x C)
      -> ResNet-d (output stride 8) / cResNet-d (output stride 1 relative to z): the same
         `ResNet` builder with `output_stride`, strides past it turned into dilation
      -> ASPP: four parallel 3x3 convs with dilation 6, 12, 18, 24, each giving class logits,
         summed (Chen et al., 2016)
      -> logits at h/8 x w/8, upsampled bilinearly to the label size by `upsample`

Both variants predict at h/8 x w/8 for an h x w image: the RGB backbone reaches it by stride
8, the latent one keeps z's resolution. Weights of a classification network of the same
architecture initialise the backbone (`load_backbone`); the 1000-way layer is dropped.
"""

import keras
import tensorflow as tf

from tfcomp import layers
from tfcomp.nets.resnet import ResNet

ASPP_RATES = (6, 12, 18, 24)


@keras.saving.register_keras_serializable(package="tfcomp")
class ASPP(keras.layers.Layer):
    """Sum of parallel dilated 3x3 convolutions to class logits (DeepLab-v2)."""

    def __init__(self, num_classes, rates=ASPP_RATES, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.rates = int(num_classes), tuple(int(r) for r in rates)
        self.branches = [
            layers.Conv2D(
                self.num_classes,
                3,
                padding="same",
                dilation_rate=r,
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                name=f"rate{r}",
                dtype=self.dtype_policy,  # sublayers take the global policy unless told
            )
            for r in self.rates
        ]

    def call(self, x):
        return tf.add_n([branch(x) for branch in self.branches])

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "rates": list(self.rates)}


@keras.saving.register_keras_serializable(package="tfcomp")
class DeepLab(keras.Model):
    """Backbone + ASPP; `call` returns {'logits': [N, h', w', K] float32, 'features': ...}.

    The backbone is the `ResNet` of the same block counts with output stride 8 for RGB (it has
    the root block) and 1 relative to z for latent networks (`tfcomp.nets.registry` builds it).
    """

    def __init__(
        self,
        blocks=(3, 4, 6, 3),
        root=True,
        first_stage=0,
        num_classes=21,
        input_channels=3,
        width=1.0,
        sync_batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.sync_batch_norm = bool(sync_batch_norm)
        self.blocks, self.root = tuple(int(b) for b in blocks), bool(root)
        self.first_stage, self.num_classes = int(first_stage), int(num_classes)
        self.input_channels, self.width = int(input_channels), float(width)
        self.backbone = ResNet(
            blocks=self.blocks,
            root=self.root,
            first_stage=self.first_stage,
            num_classes=0,
            input_channels=self.input_channels,
            width=self.width,
            output_stride=8 if self.root else 1,
            sync_batch_norm=self.sync_batch_norm,
            name="backbone",
        )
        self.aspp = ASPP(self.num_classes, name="aspp", dtype="float32")

    def call(self, x, training=False):
        features = self.backbone(x, training=training)["features"]
        return {"logits": self.aspp(features), "features": features}

    def get_config(self):
        return {
            **super().get_config(),
            "blocks": list(self.blocks),
            "root": self.root,
            "first_stage": self.first_stage,
            "num_classes": self.num_classes,
            "input_channels": self.input_channels,
            "width": self.width,
            "sync_batch_norm": self.sync_batch_norm,
        }


def load_backbone(deeplab, classifier):
    """Copies a classifier's weights into the backbone (dilation changes no shapes).

    The units are matched in order; the classifier's fc layer is dropped. Raises ValueError
    when the architectures (blocks, root, width, input channels) differ.
    """
    target, source = deeplab.backbone, classifier
    same = (target.blocks, target.root, target.width, target.input_channels) == (
        source.blocks,
        source.root,
        source.width,
        source.input_channels,
    )
    if not same:
        raise ValueError(
            f"classifier {source.name} (blocks {source.blocks}, width {source.width}, "
            f"{source.input_channels} input channels) does not match the backbone "
            f"(blocks {target.blocks}, width {target.width}, {target.input_channels})"
        )
    pairs = list(zip(target.units, source.units))
    if target.root:
        pairs += [(target.root_conv, source.root_conv), (target.root_bn, source.root_bn)]
    for mine, theirs in pairs:
        mine.set_weights(theirs.get_weights())
    target.input_mean.assign(source.input_mean)
    return len(pairs)


def freeze_batch_norm(deeplab):
    """Fixes every batch-norm layer of the backbone: statistics and scale / offset (a Keras 3
    batch norm that is not trainable normalises with its moving statistics, also in training),
    as DeepLab-v2 trains segmentation. Returns how many layers it froze."""
    layers = [
        layer
        for layer in deeplab.backbone._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    for layer in layers:
        layer.trainable = False
    return len(layers)


def upsample(logits, size):
    """Bilinear upsampling of logits to the label size (h, w)."""
    return tf.image.resize(tf.cast(logits, tf.float32), size, method="bilinear")
