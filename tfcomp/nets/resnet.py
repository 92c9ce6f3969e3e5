"""ResNet v1 (bottleneck) for RGB images and cResNet for compressed representations z.

Paper Section 4.1-4.2, Table 1 and Table 3 (Appendix A.3). One builder for every depth: a
network is its block counts per stage plus two switches, whether it has the root block
(7x7/2 conv + 3x3/2 max pool) and the first stage it keeps. cResNet-k "cuts off the front" of
ResNet: no root, no conv2_x, and its conv3_x takes the 28 x 28 x C latent directly, with stride 1.

Layout of He et al. (2015), v1: every unit is 1x1 -> 3x3 -> 1x1 (x4 channels) with batch norm,
ReLU after the sum. The stride of a downsampling stage sits in its *first* unit, on the first
1x1 conv and on the projection shortcut; this is the layout whose multiply-accumulates match
Table 1 within 0.5% (TF-Slim's stride in the last unit gives 3.48e9 for ResNet-50).

Block counts per network are the registry's table (`tfcomp.nets.registry`).

`output_stride` turns strides into dilation in one place (`_strides_and_dilations`): once the
network's total stride would exceed it, later stages keep stride 1 and dilate their 3x3 convs
instead. That single code path gives the atrous (-d) backbones for segmentation.

              input         root   conv2_x  conv3_x  conv4_x  conv5_x   pool + fc
    ResNet    224x224x3     yes    56x56    28x28    14x14    7x7       1000-way
    cResNet   28x28xC       no     none     28x28    14x14    7x7       1000-way
"""

import keras
import tensorflow as tf

STAGE_FILTERS = (64, 128, 256, 512)  # bottleneck widths of conv2_x .. conv5_x (x4 output)
STAGE_NAMES = ("conv2", "conv3", "conv4", "conv5")


@keras.saving.register_keras_serializable(package="tfcomp")
class Bottleneck(keras.layers.Layer):
    """1x1 (stride) -> 3x3 (dilation) -> 1x1 x4, batch norm, projection shortcut if needed."""

    def __init__(
        self, filters, stride=1, dilation=1, projection=False, sync_batch_norm=False, **kwargs
    ):
        super().__init__(**kwargs)
        self.filters, self.stride, self.dilation = int(filters), int(stride), int(dilation)
        self.projection, self.sync_batch_norm = bool(projection), bool(sync_batch_norm)
        bn = dict(epsilon=1e-5, synchronized=self.sync_batch_norm)
        conv = dict(use_bias=False, kernel_initializer="he_normal")
        self.conv1 = keras.layers.Conv2D(filters, 1, strides=stride, name="conv1", **conv)
        self.bn1 = keras.layers.BatchNormalization(momentum=0.9, name="bn1", **bn)
        self.conv2 = keras.layers.Conv2D(
            filters, 3, padding="same", dilation_rate=dilation, name="conv2", **conv
        )
        self.bn2 = keras.layers.BatchNormalization(momentum=0.9, name="bn2", **bn)
        self.conv3 = keras.layers.Conv2D(4 * filters, 1, name="conv3", **conv)
        # Zero-init of the last BN's scale makes each unit start as the identity (Goyal et al.).
        self.bn3 = keras.layers.BatchNormalization(gamma_initializer="zeros", name="bn3", **bn)
        if self.projection:
            self.shortcut = keras.layers.Conv2D(
                4 * filters, 1, strides=stride, name="shortcut", **conv
            )
            self.shortcut_bn = keras.layers.BatchNormalization(
                momentum=0.9, name="shortcut_bn", **bn
            )

    def call(self, x, training=False):
        shortcut = x
        if self.projection:
            shortcut = self.shortcut_bn(self.shortcut(x), training=training)
        y = tf.nn.relu(self.bn1(self.conv1(x), training=training))
        y = tf.nn.relu(self.bn2(self.conv2(y), training=training))
        y = self.bn3(self.conv3(y), training=training)
        return tf.nn.relu(y + shortcut)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "stride": self.stride,
            "dilation": self.dilation,
            "projection": self.projection,
            "sync_batch_norm": self.sync_batch_norm,
        }


def _strides_and_dilations(root, first_stage, num_stages, output_stride):
    """Per kept stage: (stride of its first unit, dilation of its 3x3 convs)."""
    total = 4 if root else 1  # the root block's conv and max pool halve twice
    dilation = 1
    out = []
    for stage in range(first_stage, num_stages):
        # conv3_x .. conv5_x halve the resolution, except cResNet's conv3_x (input is 28x28).
        stride = 2 if stage > 0 and not (stage == first_stage and not root) else 1
        if output_stride and stride > 1 and total * stride > output_stride:
            dilation *= stride
            stride = 1
        total *= stride
        out.append((stride, dilation))
    return out


@keras.saving.register_keras_serializable(package="tfcomp")
class ResNet(keras.Model):
    """Bottleneck ResNet v1 / cResNet; returns a dict with fixed keys.

    logits    [N, num_classes] (absent when num_classes is 0)
    features  [N, h, w, 2048 * width] the last stage's feature map

    Inputs are centred inside the model by a per-channel `input_mean` (non-trainable; set it
    from data with `set_input_mean`, A.4's "per channel mean centering"); RGB inputs are in
    0..255 and also divided by a fixed 58 so that the root conv sees unit-scale values.
    """

    def __init__(
        self,
        blocks=(3, 4, 6, 3),
        root=True,
        first_stage=0,
        num_classes=1000,
        input_channels=3,
        width=1.0,
        output_stride=None,
        sync_batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        blocks = tuple(int(b) for b in blocks)
        self.sync_batch_norm = bool(sync_batch_norm)
        if len(blocks) != len(STAGE_FILTERS) - first_stage:
            raise ValueError(
                f"blocks must give one count per kept stage ({len(STAGE_FILTERS) - first_stage} "
                f"from {STAGE_NAMES[first_stage]}). Received: blocks={blocks}"
            )
        if width <= 0:
            raise ValueError(f"width must be positive. Received: width={width}")
        self.blocks, self.root, self.first_stage = blocks, bool(root), int(first_stage)
        self.num_classes, self.input_channels = int(num_classes), int(input_channels)
        self.width, self.output_stride = float(width), output_stride
        self.input_mean = self.add_weight(
            name="input_mean",
            shape=(self.input_channels,),
            initializer="zeros",
            trainable=False,
            dtype="float32",
        )
        self.input_scale = 1.0 / 58.0 if self.root else 1.0
        scaled = [max(8, int(round(f * self.width))) for f in STAGE_FILTERS]
        if self.root:
            self.root_conv = keras.layers.Conv2D(
                scaled[0], 7, strides=2, padding="same", use_bias=False, name="root_conv"
            )
            self.root_bn = keras.layers.BatchNormalization(
                momentum=0.9, epsilon=1e-5, synchronized=self.sync_batch_norm, name="root_bn"
            )
            self.root_pool = keras.layers.MaxPooling2D(3, strides=2, padding="same")
        self.units = []
        schedule = _strides_and_dilations(
            self.root, self.first_stage, len(STAGE_FILTERS), output_stride
        )
        for offset, (count, (stride, dilation)) in enumerate(zip(blocks, schedule)):
            stage = self.first_stage + offset
            for i in range(count):
                self.units.append(
                    Bottleneck(
                        scaled[stage],
                        stride=stride if i == 0 else 1,
                        dilation=dilation,
                        projection=i == 0,
                        sync_batch_norm=self.sync_batch_norm,
                        name=f"{STAGE_NAMES[stage]}_{i + 1}",
                    )
                )
        self.pool = keras.layers.GlobalAveragePooling2D()
        if self.num_classes:
            self.fc = keras.layers.Dense(self.num_classes, name="fc", dtype="float32")

    def set_input_mean(self, mean):
        self.input_mean.assign(tf.cast(mean, tf.float32))

    def call(self, x, training=False):
        x = (tf.cast(x, tf.float32) - self.input_mean) * self.input_scale
        x = tf.cast(x, self.compute_dtype)
        if self.root:
            x = tf.nn.relu(self.root_bn(self.root_conv(x), training=training))
            x = self.root_pool(x)
        for unit in self.units:
            x = unit(x, training=training)
        outputs = {"features": x}
        if self.num_classes:
            outputs["logits"] = self.fc(self.pool(x))
        return outputs

    def get_config(self):
        return {
            **super().get_config(),
            "blocks": list(self.blocks),
            "root": self.root,
            "first_stage": self.first_stage,
            "num_classes": self.num_classes,
            "input_channels": self.input_channels,
            "width": self.width,
            "output_stride": self.output_stride,
            "sync_batch_norm": self.sync_batch_norm,
        }
