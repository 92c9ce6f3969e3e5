import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcomp import flops
from tfcomp.flops import flop_table
from tfcomp.nets import registry
from tfcomp.nets.resnet import ResNet


def build_resnet(name, num_classes=1000, input_channels=None, width=1.0, output_stride=None):
    """A registered classification network, or its backbone with `output_stride`."""
    if output_stride is None:
        return registry.build(name, num_classes, input_channels, width)
    spec = registry.get(name)
    channels = input_channels or (3 if spec.root else 32)
    return ResNet(
        spec.blocks,
        spec.root,
        spec.first_stage,
        num_classes,
        channels,
        width,
        output_stride=output_stride,
    )


# Paper Table 1 (FLOPs = multiply-accumulates, 224x224 RGB / 28x28 latent).
TABLE_1 = {
    "resnet50": 3.86e9,
    "resnet71": 5.38e9,
    "cresnet39": 2.95e9,
    "cresnet51": 3.83e9,
    "cresnet72": 5.36e9,
}


def test_table_1_is_reproduced_within_half_a_percent():
    rows = {r["name"]: r for r in flop_table(list(TABLE_1))}
    for name, paper in TABLE_1.items():
        assert rows[name]["macs"] == pytest.approx(paper, rel=0.005), name
        assert rows[name]["paper_macs"] == paper


def test_layer_counts_match_the_names():
    # ResNet-k counts root conv + 3 convs per unit + fc; the paper's cResNet-k counts the
    # 3 convs per unit only (39 = 3 x 13, 51 = 3 x 17, 72 = 3 x 24).
    for name, k in [("resnet50", 50), ("resnet71", 71)]:
        assert 1 + 3 * sum(registry.get(name).blocks) + 1 == k
    for name, k in [("cresnet39", 39), ("cresnet51", 51), ("cresnet72", 72)]:
        assert 3 * sum(registry.get(name).blocks) == k


TINY = [("resnet_tiny", (64, 64, 3), 2), ("cresnet_tiny", (16, 16, 8), 4)]


def tiny_inputs(shape, seed=0):
    """RGB in 0..255, or z-like values in -2..2."""
    high, low = (255.0, 0.0) if shape[-1] == 3 else (2.0, -2.0)
    return tf.random.uniform((2, *shape), low, high, seed=seed)


def unzero_last_gammas(model, seed=0):
    """Non-zero scales for every unit's last BN (zero-initialised: each unit starts as the
    identity, and everything feeding that BN would otherwise get exactly zero gradient)."""
    rng = np.random.default_rng(seed)
    for unit in model.units:
        gamma = unit.bn3.gamma
        assert not np.any(gamma.numpy()), unit.name  # the documented zero init
        gamma.assign(rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32))


@pytest.mark.parametrize("name,shape,feature_side", TINY)
def test_shapes_no_nan_and_every_weight_gets_a_gradient(name, shape, feature_side):
    model = build_resnet(name, num_classes=7, input_channels=shape[-1], width=0.25)
    x = tiny_inputs(shape)
    model(x)  # build
    unzero_last_gammas(model)
    labels = tf.constant([1, 5])
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=out["logits"])
        )
    assert out["logits"].shape == (2, 7)
    assert out["features"].shape[1:3] == (feature_side, feature_side)
    assert np.all(np.isfinite(out["logits"].numpy())) and np.isfinite(float(loss))
    assert np.all(np.isfinite(out["features"].numpy()))
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    assert not [v.path for v, g in zip(variables, grads) if g is None]
    assert not [v.path for v, g in zip(variables, grads) if not np.all(np.isfinite(g.numpy()))]
    # A weight that does not reach the loss would have an exactly zero gradient.
    assert not [v.path for v, g in zip(variables, grads) if float(tf.norm(g)) == 0.0]
    # ...and none is missing from the list checked: root (RGB only) conv + BN, per unit 3 convs
    # + 3 BNs + projection conv + BN (each tiny unit opens its stage), fc kernel + bias; a conv
    # holds 1 trainable variable (no bias), a BN 2 (gamma, beta).
    units = len(model.units)
    expected = (3 if model.root else 0) + units * (3 + 3 * 2 + 1 + 2) + 2
    assert len(variables) == expected


def test_output_stride_turns_strides_into_dilation():
    rgb = build_resnet("resnet_tiny", num_classes=0, width=0.25, output_stride=8)
    assert rgb(tf.zeros([1, 64, 64, 3]))["features"].shape[1:3] == (8, 8)
    dilations = [u.dilation for u in rgb.units]
    assert dilations == [1, 1, 2, 4]
    latent = build_resnet("cresnet_tiny", num_classes=0, input_channels=8, output_stride=1)
    assert latent(tf.zeros([1, 40, 40, 8]))["features"].shape[1:3] == (40, 40)
    # Dilation changes no weight shapes: a classification checkpoint initialises the -d net.
    plain = build_resnet("cresnet_tiny", num_classes=0, input_channels=8)
    plain(tf.zeros([1, 40, 40, 8]))
    assert [w.shape for w in plain.get_weights()] == [w.shape for w in latent.get_weights()]


def test_width_multiplier_shrinks_the_cost_quadratically():
    full = flops.count_macs(build_resnet("cresnet_tiny", input_channels=8), (28, 28, 8))
    half = flops.count_macs(build_resnet("cresnet_tiny", input_channels=8, width=0.5), (28, 28, 8))
    assert 0.2 < half / full < 0.3


@pytest.mark.parametrize("name,shape,feature_side", TINY)
def test_keras_file_round_trip(tmp_path, name, shape, feature_side):
    model = build_resnet(name, num_classes=5, input_channels=shape[-1], width=0.25)
    x = tiny_inputs(shape, seed=1)
    model(x)
    unzero_last_gammas(model, seed=1)  # so that every weight shapes the logits
    model(x, training=True)  # non-trivial BN moving statistics
    mean = np.linspace(-0.3, 0.4, shape[-1]).astype(np.float32) * (100 if name[0] == "r" else 1)
    model.set_input_mean(mean)
    expected = model(x)["logits"].numpy()
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    # The loaded model's variables lack the model-name scope of freshly built ones.
    paths = [[w.path.removeprefix(f"{name}/") for w in m.weights] for m in (model, loaded)]
    assert paths[0] == paths[1]
    for saved, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
    np.testing.assert_allclose(loaded(x)["logits"].numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.input_mean.numpy(), mean)


@pytest.mark.parametrize("name,shape,feature_side", TINY)
def test_input_mean_is_subtracted_per_channel(name, shape, feature_side):
    # A model centred by m on x computes exactly what the same weights centred by 0 compute
    # on x - m (numpy): the mean centring of A.4 is a plain per-channel subtraction.
    x = tiny_inputs(shape, seed=2).numpy()
    mean = np.random.default_rng(3).uniform(-1, 1, shape[-1]).astype(np.float32)
    mean *= 120 if shape[-1] == 3 else 1
    centred = build_resnet(name, num_classes=5, input_channels=shape[-1], width=0.25)
    centred(x)
    unzero_last_gammas(centred, seed=2)
    centred.set_input_mean(mean)
    plain = build_resnet(name, num_classes=5, input_channels=shape[-1], width=0.25)
    plain(x)
    plain.set_weights(centred.get_weights())
    plain.set_input_mean(np.zeros(shape[-1], np.float32))
    assert not centred.input_mean.trainable
    np.testing.assert_array_equal(centred.input_mean.numpy(), mean)
    for training in (False, True):
        np.testing.assert_allclose(
            centred(x, training=training)["logits"].numpy(),
            plain(x - mean, training=training)["logits"].numpy(),
            rtol=1e-6,
            atol=1e-6,
        )
    # ...and it matters: the uncentred input gives other logits.
    assert not np.allclose(centred(x)["logits"].numpy(), plain(x)["logits"].numpy(), atol=1e-3)


def test_unknown_name_and_bad_blocks_are_refused():
    with pytest.raises(ValueError, match="cresnet51"):
        build_resnet("resnet18")

    with pytest.raises(ValueError, match="Received: blocks"):
        ResNet(blocks=(1, 2), root=True, first_stage=0)
