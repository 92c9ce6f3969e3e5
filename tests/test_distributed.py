"""Several replicas and workers, correctly: Eq. (1) on the global batch, synchronized or frozen
batch norm, global batches that split, several steps per compiled call, XLA."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import train
from tests.test_train_classification import make_folder
from tests.test_train_compression import _free_ports
from tfcomp import configs, hardware
from tfcomp.codec import Codec, compression_loss
from tfcomp.nets import registry
from tfcomp.train import distribute, loop

SUM, MEAN = tf.distribute.ReduceOp.SUM, tf.distribute.ReduceOp.MEAN


def _halves(strategy, x):
    """A global batch split in two, one half per replica."""
    x = tf.constant(x)
    half = x.shape[0] // 2
    return strategy.experimental_distribute_values_from_function(
        lambda ctx: x[
            ctx.replica_id_in_sync_group * half : (ctx.replica_id_in_sync_group + 1) * half
        ]
    )


def test_equation_1_on_two_replicas_is_equation_1_on_the_global_batch():
    # Soft histograms are all-reduced before the entropy: on one global batch of 4 images, two
    # replicas of 2 give the same H, loss and gradients as one device of 4. Tolerance: float32
    # sums in another order (relative 1e-4).
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    beta, target = 50.0, 0.3
    keras.utils.set_random_seed(4)
    single = Codec(channels=4)
    weights = single.get_weights()
    with tf.GradientTape() as tape:
        out = single(images, training=True)
        terms = compression_loss(out, images, beta, target)
    grads = tape.gradient(terms["loss"], single.trainable_variables)
    assert float(out["entropy"]) > target  # the rate term is active

    strategy = distribute.make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        double = Codec(channels=4)
        double.set_weights(weights)

    @tf.function
    def step(x):
        def replica(x):
            with tf.GradientTape() as tape:
                out = double(x, training=True)
                terms = compression_loss(out, x, beta, target)
                scaled = terms["loss"] / 2  # as the loop scales each replica's loss
            grads = tape.gradient(scaled, double.trainable_variables)
            return out["entropy"], out["entropy_hard"], terms["loss"], grads

        h, h_hard, loss, grads = strategy.run(replica, (x,))
        return (
            strategy.reduce(MEAN, h, None),
            strategy.reduce(MEAN, h_hard, None),
            strategy.reduce(MEAN, loss, None),
            [strategy.reduce(SUM, g, None) for g in grads],
        )

    h2, h2_hard, loss2, grads2 = step(_halves(strategy, images))
    np.testing.assert_allclose(float(h2), float(out["entropy"]), rtol=1e-5)
    np.testing.assert_allclose(float(h2_hard), float(out["entropy_hard"]), rtol=1e-5)
    np.testing.assert_allclose(float(loss2), float(terms["loss"]), rtol=1e-4)
    for g1, g2, v in zip(grads, grads2, single.trainable_variables):
        np.testing.assert_allclose(g2.numpy(), g1.numpy(), rtol=1e-4, atol=1e-5, err_msg=v.path)


def test_synchronized_batch_norm_takes_its_statistics_from_the_global_batch():
    # In training mode a synchronized BN normalises with the statistics of all replicas'
    # examples: two replicas of 2 give the logits one device gives on the 4 (and the plain BN
    # does not, its statistics being each replica's).
    x = np.random.default_rng(1).uniform(-2, 2, (4, 8, 8, 4)).astype(np.float32)
    keras.utils.set_random_seed(5)
    single = registry.build("cresnet_tiny", 3, 4, 0.25)
    single(x)
    rng = np.random.default_rng(2)
    for unit in single.units:  # non-zero last BN scales, so every BN shapes the logits
        unit.bn3.gamma.assign(rng.uniform(0.5, 1.5, unit.bn3.gamma.shape).astype(np.float32))
    expected = single(x, training=True)["logits"].numpy()
    strategy = distribute.make_strategy("mirrored")
    results = {}
    for sync in (True, False):
        with strategy.scope():
            model = registry.build("cresnet_tiny", 3, 4, 0.25, sync_batch_norm=sync)
            model(x[:1])
            model.set_weights(single.get_weights())
        per_replica = _logits_per_replica(strategy, model, _halves(strategy, x))
        results[sync] = np.concatenate(
            [t.numpy() for t in strategy.experimental_local_results(per_replica)]
        )
    np.testing.assert_allclose(results[True], expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(results[False], expected, rtol=1e-3, atol=1e-4)


def _logits_per_replica(strategy, model, x):
    return tf.function(lambda x: strategy.run(lambda x: model(x, training=True)["logits"], (x,)))(x)


def _bn_values(model):
    layers = [
        layer
        for layer in model.backbone._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    return [w.numpy().copy() for layer in layers for w in layer.weights]


@pytest.mark.parametrize("freeze", [True, False])
def test_segmentation_freezes_the_backbones_batch_norm_unless_told(tmp_path, freeze):
    from tests.test_segmentation import write_camvid

    data = write_camvid(tmp_path / "camvid")
    common = dict(arch="resnet_tiny_d", input_mode="rgb", dataset=data, batch_size=2)
    common.update(crop_size=32, width=0.25, val_limit=None, curve_every_steps=0)
    before = train("segmenter", tmp_path / "init", train_steps=0, **common).models["segmenter"]
    after = train(
        "segmenter", tmp_path / "run", train_steps=4, freeze_batch_norm=freeze, **common
    ).models["segmenter"]
    same = [np.array_equal(a, b) for a, b in zip(_bn_values(before), _bn_values(after))]
    assert same and (all(same) if freeze else sum(same) <= len(same) // 4), same
    assert configs.load(str(tmp_path / "run" / "config.json")).freeze_batch_norm == freeze


def test_a_global_batch_that_does_not_split_is_rounded_up_and_sgd_lr_scaled(tmp_path):
    data = make_folder(tmp_path / "data", per_class=(4, 2), size=24)
    outcome = train(
        "classifier", tmp_path / "cls", arch="resnet_tiny", input_mode="rgb", dataset=data,
        strategy="mirrored", batch_size=3, learning_rate=0.03, epochs=1, resize=24, crop_size=16,
        width=0.25,
    )  # fmt: skip
    config = configs.load(str(tmp_path / "cls" / "config.json"))
    assert (config.batch_size, config.learning_rate) == (4, pytest.approx(0.04))
    train_record = outcome.result["train"]
    assert train_record["global_batch"] == 4 and "3 -> 4" in train_record["batch_rule"]
    # Adam (the codec) keeps its learning rate; the batch still splits.
    train(
        "codec", tmp_path / "codec", strategy="mirrored", batch_size=3, train_steps=1,
        crop_size=16, channels=4, entropy_fit_batches=1,
    )  # fmt: skip
    codec = configs.load(str(tmp_path / "codec" / "config.json"))
    assert (codec.batch_size, codec.learning_rate) == (
        4,
        configs.get("codec", "tiny").learning_rate,
    )


X = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)


def _linear_run(model_dir, steps, steps_per_execution, jit_compile=False):
    seen = []

    def build_state():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
        model.layers[0].kernel.assign(tf.zeros([3, 1]))
        return {"model": model, "optimizer": keras.optimizers.SGD(0.1)}

    def loss_fn(state, batch):
        x, y = batch
        return tf.reduce_mean(tf.square(state["model"](x) - y)), {}

    state, history = loop.train(
        strategy=tf.distribute.get_strategy(),
        build_state=build_state,
        dataset_fn=lambda ctx: tf.data.Dataset.from_tensor_slices((X, Y)).batch(4).repeat(),
        loss_fn=loss_fn,
        model_dir=str(model_dir),
        train_steps=steps,
        checkpoint_every=4,
        summary_every=4,
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
        progress=False,
        after_step=lambda before, step, state, metrics: seen.append((before, step)),
    )
    return state["model"].get_weights()[0], history, seen


def test_several_steps_per_call_take_the_same_steps_with_fewer_read_backs(tmp_path):
    one, history1, _ = _linear_run(tmp_path / "one", 9, 1)
    three, history3, seen = _linear_run(tmp_path / "three", 9, 3)
    np.testing.assert_allclose(three, one, rtol=1e-6)
    assert len(history1) == 9 and len(history3) == 3  # one read-back per call
    assert seen == [(0, 3), (3, 6), (6, 9)]
    # The mean loss of a call is the mean of its steps' losses.
    assert history3[0]["loss"] == pytest.approx(np.mean([h["loss"] for h in history1[:3]]))
    # Checkpoints every 4 steps fall on the first call boundary past each multiple of 4.
    checkpoints = tf.train.get_checkpoint_state(str(tmp_path / "three" / "checkpoints"))
    steps = sorted(int(p.rsplit("-", 1)[1]) for p in checkpoints.all_model_checkpoint_paths)
    assert steps == [6, 9]
    # A resumed run goes on from step 9 in calls of 3.
    _, more, seen = _linear_run(tmp_path / "three", 12, 3)
    assert len(more) == 1 and seen == [(9, 12)]


def test_a_last_call_of_one_step_runs_the_one_step_graph(tmp_path):
    """10 steps in calls of 3 end with a call of 1, which runs the graph without a while loop
    (the graph `steps_per_execution=1` uses: a while loop around one step cost 3-11% of a
    full-width ResNet-50 step, README): same weights as 10 single steps."""
    one, _, _ = _linear_run(tmp_path / "one", 10, 1)
    three, history, seen = _linear_run(tmp_path / "three", 10, 3)
    np.testing.assert_allclose(three, one, rtol=1e-6)
    assert seen == [(0, 3), (3, 6), (6, 9), (9, 10)] and len(history) == 4


def test_xla_compiled_steps_train_on_cpu(tmp_path):
    plain, _, _ = _linear_run(tmp_path / "plain", 6, 2)
    xla, _, _ = _linear_run(tmp_path / "xla", 6, 2, jit_compile=True)
    np.testing.assert_allclose(xla, plain, rtol=1e-5)
    # The codec and a classifier, steps compiled by XLA, several per call.
    data = make_folder(tmp_path / "data", per_class=(4, 2), size=24)
    outcome = train(
        "codec", tmp_path / "codec", dataset=data, jit_compile=True, steps_per_execution=2,
        train_steps=4, batch_size=4, crop_size=16, channels=4, entropy_fit_batches=1,
    )  # fmt: skip
    assert len(outcome.history) == 2 and all(np.isfinite(h["loss"]) for h in outcome.history)
    outcome = train(
        "classifier", tmp_path / "cls", arch="resnet_tiny", input_mode="rgb", dataset=data,
        jit_compile=True, steps_per_execution=2, batch_size=4, epochs=1, resize=24,
        crop_size=16, width=0.25,
    )  # fmt: skip
    assert all(np.isfinite(h["loss"]) for h in outcome.history)


CLASSIFIER_WORKER = """
import sys, numpy as np
from tests.helpers import train
outcome = train("classifier", sys.argv[1], arch="resnet_tiny", input_mode="rgb",
    dataset=sys.argv[3], strategy="multi_worker", batch_size=4, epochs=1, resize=24,
    crop_size=16, width=0.25)
np.savez(sys.argv[2], *[w.numpy() for w in outcome.state["model"].weights])
"""


def test_two_worker_processes_train_one_classifier(tmp_path):
    # MultiWorkerMirroredStrategy, the classifier trainer itself: both workers end with the
    # same weights (batch norm statistics included), only the chief writes the model.
    data = make_folder(tmp_path / "data", per_class=(4, 2), size=24)
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    procs = []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        command = [sys.executable, "-c", CLASSIFIER_WORKER, str(tmp_path / "run")]
        command += [str(tmp_path / f"w{index}"), data]
        procs.append(
            subprocess.Popen(
                command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        )
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    a, b = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(a.files) == len(b.files) > 10
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    assert (tmp_path / "run" / "classifier.keras").exists()
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["train"]["replicas"] == 2


@pytest.mark.parametrize(
    "line, native",
    [
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile", True),  # Xeon, AVX-512 BF16
        ("flags\t\t: fpu sse2 avx2 amx_bf16", True),  # AMX
        ("flags\t\t: fpu sse2 avx2 fma", False),  # an AVX2-only AMD EPYC
        ("Features\t: fp asimd sve bf16 i8mm", True),  # Arm with BF16
        ("Features\t: fp asimd", False),
    ],
)
def test_mixed_precision_on_a_cpu_is_bfloat16_only_where_the_cpu_computes_it(
    tmp_path, monkeypatch, line, native
):
    # Emulated bfloat16 is 16x slower than float32 on the codec (AVX2-only EPYC), so mixed
    # precision on such a CPU trains in float32; TFCOMP_CPU_BFLOAT16 forces either way.
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x\n{line}\n\nprocessor\t: 1\n{line}\n")
    monkeypatch.delenv(hardware.BFLOAT16_ENV, raising=False)
    assert hardware.cpu_has_native_bfloat16(str(cpuinfo)) is native
    assert hardware.cpu_has_native_bfloat16(str(tmp_path / "missing")) is False  # not Linux
    assert hardware.cpu_computes_bfloat16(str(cpuinfo)) is native
    monkeypatch.setenv(hardware.BFLOAT16_ENV, "1")
    assert hardware.cpu_has_native_bfloat16(str(cpuinfo)) is True
    assert hardware.cpu_computes_bfloat16(str(cpuinfo)) is native  # the machine, recorded
    assert distribute.precision_policy(True) == "mixed_bfloat16"
    monkeypatch.setenv(hardware.BFLOAT16_ENV, "0")
    assert hardware.cpu_has_native_bfloat16(str(cpuinfo)) is False
    assert distribute.precision_policy(True) == "float32"
    assert distribute.precision_policy(False) == "float32"
