"""Every registered network builds at width 0.25, computes finite outputs, gives every weight
a gradient, and survives a .keras round trip with equal outputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcomp.nets import registry


def _unzero_last_gammas(model, seed):
    # Each unit's last BN scale starts at zero (the unit starts as the identity), which would
    # give everything before it exactly zero gradient; non-zero scales expose a missing one.
    rng = np.random.default_rng(seed)
    backbone = getattr(model, "backbone", model)
    for unit in backbone.units:
        unit.bn3.gamma.assign(rng.uniform(0.5, 1.5, unit.bn3.gamma.shape).astype(np.float32))


@pytest.mark.parametrize("name", registry.names(include_test=True))
def test_every_registered_network_builds_trains_and_round_trips(name, tmp_path):
    spec = registry.get(name)
    side, channels = (64, 3) if spec.root else (8, 4)
    classes = 5
    model = registry.build(name, classes, channels, width=0.25)
    x = tf.random.uniform([2, side, side, channels], 0, 255 if spec.root else 2, seed=1)
    model(x)
    _unzero_last_gammas(model, seed=len(name))
    with tf.GradientTape() as tape:
        logits = model(x, training=True)["logits"]
        loss = tf.reduce_mean(tf.square(tf.cast(logits, tf.float32)))
    assert np.all(np.isfinite(logits.numpy()))
    # Classifiers give [N, K]; segmenters a map at h/8 (RGB, output stride 8) or z's own size.
    out = side // 8 if spec.root else side
    assert logits.shape == ((2, out, out, classes) if spec.dilated else (2, classes))
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    missing = [v.path for v, g in zip(variables, grads) if g is None or float(tf.norm(g)) == 0]
    assert not missing, missing
    model(x, training=True)  # non-trivial batch-norm statistics for the round trip
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(
        loaded(x)["logits"].numpy(), model(x)["logits"].numpy(), rtol=1e-5, atol=1e-5
    )


def test_names_say_what_the_networks_read_and_whether_they_are_dilated():
    assert registry.get("cresnet51").input_kind == "latent"
    assert registry.get("resnet50").input_kind == "rgb"
    assert (
        registry.get("cresnet51_d").dilated and registry.get("cresnet51_d").backbone == "cresnet51"
    )
    assert registry.check_input("cresnet39", "compressed", dilated=False).blocks == (4, 6, 3)
    assert registry.check_input("resnet71_d", "reconstructed", dilated=True).dilated
    with pytest.raises(ValueError, match="reads the latent z"):
        registry.check_input("cresnet51", "rgb", dilated=False)
    with pytest.raises(ValueError, match="unknown network"):
        registry.get("resnet18")
