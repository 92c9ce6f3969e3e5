"""Joint finetuning (paper Section 6): Eq. (2), the schedule, what each mode trains, and that
joint training learns."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import codec_file, train
from tests.test_train_classification import make_folder
from tfcomp import configs
from tfcomp.codec import Codec
from tfcomp.codec.files import CodecFiles
from tfcomp.eval.models import load_codec
from tfcomp.nets import registry
from tfcomp.train.classification import lr_schedule
from tfcomp.train.joint import joint_step, with_codec_rate_settings

SIZES = dict(resize=48, crop_size=40)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder dataset, a briefly trained codec, and an untrained cResNet on it (0 epochs)."""
    root = tmp_path_factory.mktemp("joint")
    data = make_folder(root / "data")
    codec = codec_file(root / "codec", data)
    train(
        "classifier",
        root / "cls",
        arch="cresnet_tiny",
        input_mode="compressed",
        codec=codec,
        dataset=data,
        epochs=0,
        width=0.25,
        **SIZES,
    )
    return data, codec, str(root / "cls" / "classifier.keras")


def test_schedule_divides_by_ten_every_third_of_the_epochs():
    schedule = lr_schedule(configs.get("joint", learning_rate=0.005), steps_per_epoch=10)
    assert float(schedule(0)) == pytest.approx(0.005)
    assert float(schedule(31)) == pytest.approx(0.0005)
    assert float(schedule(61)) == pytest.approx(0.00005)


def test_joint_step_is_equation_2():
    keras.utils.set_random_seed(1)
    codec = Codec(channels=4)
    classifier = registry.build("cresnet_tiny", 3, input_channels=4, width=0.25)
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)), tf.uint8)
    labels = tf.constant([0, 2])
    gamma, beta, target, wd = 0.01, 50.0, 0.3, 1e-3
    loss, metrics = joint_step(
        codec, classifier, images, labels,
        mode="joint", gamma=gamma, beta=beta, target=target, weight_decay=wd,
    )  # fmt: skip
    # The same terms from the networks' raw outputs, in numpy.
    out = codec(images, training=True)
    x = images.numpy().astype(np.float64)
    mse = np.mean((x - out["x_hat"].numpy()) ** 2)
    p = out["assignment"].numpy().reshape(-1, codec.num_centers).mean(0)
    entropy = -np.sum(p * np.log2(p))
    logits = classifier(out["z"], training=True)["logits"].numpy().astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.mean(log_softmax[np.arange(2), labels.numpy()])
    l2 = sum(
        0.5 * np.sum(w.numpy() ** 2)
        for w in classifier.trainable_weights
        if w.path.endswith("kernel")
    )
    expected = gamma * (mse + beta * max(entropy - target, 0)) + ce + wd * l2
    assert entropy > target  # the rate term is active
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    assert float(metrics["cross_entropy"]) == pytest.approx(ce, rel=1e-4)
    # Only the compression terms in codec_only; only cross-entropy + L2 in classifier_only.
    codec_loss, _ = joint_step(
        codec, classifier, images, labels,
        mode="codec_only", gamma=gamma, beta=beta, target=target, weight_decay=wd,
    )  # fmt: skip
    assert float(codec_loss) == pytest.approx(gamma * (mse + beta * (entropy - target)), rel=1e-4)
    # range_weight adds the codec trainer's penalty on y past the outer centers, in numpy, to
    # the compression term of both modes that train the codec (the control's as Eq. (2)'s).
    # Channel 0 of 4 is put at y = 40 (its filter zero, its bias 40), far past the outermost
    # center: every assignment one-hot there, counted as the codec trainer counts it.
    last = codec.encoder.stack[-1]
    last.kernel.assign(last.kernel * tf.constant([0.0, 1.0, 1.0, 1.0]))
    last.bias.assign(tf.constant([40.0, 0.0, 0.0, 0.0]))
    y = codec(images, training=True)["y"].numpy().astype(np.float64)
    centers = codec.quantizer.centers.numpy().astype(np.float64)
    excess = np.mean(np.maximum(y - centers.max(), 0) ** 2 + np.maximum(centers.min() - y, 0) ** 2)
    assert excess == pytest.approx((40 - centers.max()) ** 2 / 4)  # the others within the span
    for mode in ("joint", "codec_only"):
        step = dict(mode=mode, gamma=gamma, beta=beta, target=target, weight_decay=wd)
        base, _ = joint_step(codec, classifier, images, labels, **step)
        penalised, metrics = joint_step(codec, classifier, images, labels, **step, range_weight=2.0)
        assert float(penalised) == pytest.approx(float(base) + gamma * 2.0 * excess, rel=1e-4)
        assert float(metrics["range_excess"]) == pytest.approx(excess, rel=1e-4)
        assert float(metrics["one_hot_channels"]) == 1.0


def test_joint_takes_the_codecs_rate_settings_where_not_given(tmp_path):
    codec_config = configs.get("codec", "tiny", beta=7.0, target_entropy=0.5, range_weight=0.25)
    (tmp_path / "config.json").write_text(json.dumps(configs.to_dict(codec_config)))
    joint = configs.get("joint", "tiny", codec=str(tmp_path / "codec.keras"))
    taken = with_codec_rate_settings(joint)
    assert (taken.beta, taken.target_entropy, taken.range_weight) == (7.0, 0.5, 0.25)
    given = with_codec_rate_settings(dataclasses.replace(joint, beta=1.0, range_weight=0.0))
    assert (given.beta, given.target_entropy, given.range_weight) == (1.0, 0.5, 0.0)
    (tmp_path / "config.json").unlink()
    with pytest.raises(ValueError, match="range_weight not given"):
        with_codec_rate_settings(dataclasses.replace(joint, beta=1.0, target_entropy=0.5))


def test_cross_entropy_reaches_the_encoder_only_in_joint_mode():
    # With gamma = 0 the codec's own loss is gone: any encoder gradient is the classifier's,
    # flowing back through z and the quantizer's soft gradient (Section 6's point).
    keras.utils.set_random_seed(2)
    codec = Codec(channels=4)
    classifier = registry.build("cresnet_tiny", 3, input_channels=4, width=0.25)
    images = tf.constant(np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)), tf.uint8)
    labels = tf.constant([1, 2])
    norms = {}
    for mode in ("joint", "classifier_only"):
        with tf.GradientTape() as tape:
            loss, _ = joint_step(
                codec, classifier, images, labels,
                mode=mode, gamma=0.0, beta=0.0, target=0.0, weight_decay=0.0,
            )  # fmt: skip
        grads = tape.gradient(loss, codec.encoder.trainable_variables)
        norms[mode] = sum(0.0 if g is None else float(tf.norm(g)) for g in grads)
    assert norms["joint"] > 0 and np.isfinite(norms["joint"])
    assert norms["classifier_only"] == 0.0  # z is fixed: the codec does not move


def _weights(model):
    return [w.numpy().copy() for w in model.weights]


def _changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_each_mode_trains_what_it_says(trained, tmp_path):
    data, codec_path, classifier_path = trained
    codec0 = _weights(keras.models.load_model(codec_path).encoder)
    cls0 = _weights(keras.models.load_model(classifier_path))
    common = dict(dataset=data, codec=codec_path, epochs=1, batch_size=12)
    for mode in ("joint", "codec_only", "classifier_only"):
        outcome = train(
            "joint",
            tmp_path / mode,
            classifier=None if mode == "codec_only" else classifier_path,
            mode=mode,
            **common,
            **SIZES,
        )
        history, evaluation = outcome.history, outcome.metrics
        codec, classifier = outcome.state["model"], outcome.state.get("classifier")
        assert len(history) == 6 and all(np.isfinite(h["loss"]) for h in history)
        assert _changed(codec0, _weights(codec.encoder)) == (mode != "classifier_only"), mode
        if mode == "codec_only":
            assert classifier is None and "top1" not in evaluation
        else:
            assert _changed(cls0, _weights(classifier)), mode
            assert 0 <= evaluation["top1"] <= 1
        assert evaluation["codec"]["images"] == 27
        # The saved codec writes and reads real files with its refitted tables.
        saved = load_codec(str(tmp_path / mode / "codec.keras"))
        image = np.random.default_rng(0).integers(0, 256, (24, 32, 3)).astype(np.uint8)
        files = CodecFiles(saved)
        np.testing.assert_array_equal(
            files.decode_symbols(files.compress(image))[1],
            saved.encode(image[None])[1][0].numpy(),
        )
        # The codec's real file rate and quality on the validation images, and its new id.
        assert evaluation["codec"]["bpp_real"] > 0 and evaluation["codec"]["psnr"] > 10
        result = json.loads((tmp_path / mode / "result.json").read_text())
        assert evaluation["codec"]["model_id"] == result["models"]["codec"]["model_id"]
    config = configs.load(str(tmp_path / "joint" / "config.json"))
    assert config.mode == "joint" and config.gamma == 0.001
    # beta, H_t and range_weight were not given: the codec's own, from its config.json.
    assert (config.beta, config.target_entropy, config.range_weight) == (0.0, 0.8, 0.0)
    result = json.loads((tmp_path / "joint" / "result.json").read_text())
    card = result["models"]["classifier"]
    assert card["input_mode"] == "compressed" and card["arch"] == "cresnet_tiny"
    assert card["codec"] == str(tmp_path / "joint" / "codec.keras")
    # A first run: no checkpoint to resume from.
    assert result["train"]["resumed_seconds"] == 0.0


def test_codec_lr_multiplier_scales_only_the_codecs_steps(trained, tmp_path):
    # One SGD step from the same start and batch: the update of each variable is -lr x its
    # gradient, so a codec at 0.1 x the lr moves exactly 0.1 x as far and the classifier as far.
    data, codec_path, classifier_path = trained
    moves = {}
    for multiplier in (1.0, 0.1):
        outcome = train(
            "joint",
            tmp_path / str(multiplier),
            dataset=data,
            codec=codec_path,
            classifier=classifier_path,
            epochs=1,
            batch_size=12,
            train_limit=12,
            codec_lr_multiplier=multiplier,
            mixed_precision=False,
            **SIZES,
        )
        assert len(outcome.history) == 1
        codec, classifier = outcome.state["model"], outcome.state["classifier"]
        moves[multiplier] = [
            np.concatenate([(a - b).ravel() for a, b in zip(_weights(model), start)])
            for model, start in (
                (codec.encoder, _weights(keras.models.load_model(codec_path).encoder)),
                (classifier, _weights(keras.models.load_model(classifier_path))),
            )
        ]
    (codec_1, classifier_1), (codec_01, classifier_01) = moves[1.0], moves[0.1]
    # Moves of ~1e-6 read off float32 weights of ~0.1 carry their rounding (~4e-9).
    assert np.abs(codec_1).max() > 1e-6 and np.abs(classifier_1).max() > 1e-6
    np.testing.assert_allclose(codec_01, 0.1 * codec_1, rtol=1e-3, atol=1e-8)
    np.testing.assert_allclose(classifier_01, classifier_1, rtol=1e-3, atol=1e-8)


def test_joint_training_learns_to_classify(trained, tmp_path):
    # From an untrained classifier, joint finetuning alone must learn the 3 classes.
    data, codec_path, classifier_path = trained
    outcome = train(
        "joint",
        tmp_path,
        dataset=data,
        codec=codec_path,
        classifier=classifier_path,
        epochs=12,
        batch_size=12,
        learning_rate=0.1 * 12 / 64,
        **SIZES,
    )
    history, evaluation = outcome.history, outcome.metrics
    assert evaluation["top1"] > 1 / 3 + 0.25, evaluation
    first = np.mean([h["cross_entropy"] for h in history[:3]])
    last = np.mean([h["cross_entropy"] for h in history[-3:]])
    assert last < first


def test_missing_classifier_is_named(trained, tmp_path):
    data, codec_path, _ = trained
    with pytest.raises(FileNotFoundError, match="classifier"):
        train("joint", tmp_path, dataset=data, codec=codec_path, mode="joint")
