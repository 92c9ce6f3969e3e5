import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcomp import flops
from tfcomp.nets.registry import flop_table
from tfcomp.nets.resnet import RESNET_SPECS, build_resnet

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
        assert 1 + 3 * sum(RESNET_SPECS[name]["blocks"]) + 1 == k
    for name, k in [("cresnet39", 39), ("cresnet51", 51), ("cresnet72", 72)]:
        assert 3 * sum(RESNET_SPECS[name]["blocks"]) == k


@pytest.mark.parametrize(
    "name,shape,feature_side",
    [("resnet_tiny", (64, 64, 3), 2), ("cresnet_tiny", (16, 16, 8), 4)],
)
def test_shapes_no_nan_and_every_weight_gets_a_gradient(name, shape, feature_side):
    model = build_resnet(name, num_classes=7, input_channels=shape[-1], width=0.25)
    x = tf.random.uniform((2, *shape), 0, 255 if shape[-1] == 3 else 2, seed=0)
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = tf.reduce_mean(tf.square(out["logits"]))
    assert out["logits"].shape == (2, 7)
    assert out["features"].shape[1:3] == (feature_side, feature_side)
    grads = tape.gradient(loss, model.trainable_variables)
    assert not [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


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


def test_keras_file_round_trip(tmp_path):
    model = build_resnet("cresnet_tiny", num_classes=5, input_channels=4, width=0.25)
    model.set_input_mean([0.1, -0.2, 0.3, 0.0])
    x = tf.random.normal([2, 12, 12, 4], seed=1)
    expected = model(x)["logits"].numpy()
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(loaded(x)["logits"].numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.input_mean.numpy(), [0.1, -0.2, 0.3, 0.0])


def test_unknown_name_and_bad_blocks_are_refused():
    with pytest.raises(ValueError, match="cresnet51"):
        build_resnet("resnet18")
    from tfcomp.nets.resnet import ResNet

    with pytest.raises(ValueError, match="Received: blocks"):
        ResNet(blocks=(1, 2), root=True, first_stage=0)
