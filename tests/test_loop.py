"""The shared training loop, on a linear model whose gradients are known exactly."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcomp.train import distribute, loop

X = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)


def linear_task(poison_from_step=None, poison_gradient_from_step=None):
    def build_state():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
        model.layers[0].kernel.assign(tf.zeros([3, 1]))
        return {"model": model, "optimizer": keras.optimizers.SGD(0.1)}

    def dataset_fn(context, global_batch=4):
        per_replica = context.get_per_replica_batch_size(global_batch)
        x, y = X.copy(), Y.copy()
        if poison_from_step is not None:
            x[(poison_from_step - 1) * global_batch :] = np.nan
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(per_replica).repeat()

    def loss_fn(state, batch):
        x, y = batch
        loss = tf.reduce_mean(tf.square(state["model"](x) - y))
        if poison_gradient_from_step is not None:
            # sqrt(0) = 0 keeps the loss finite while its gradient is inf * 0 = NaN.
            poisoned = tf.cast(state["step"] + 1 >= poison_gradient_from_step, tf.float32)
            kernel = state["model"].layers[0].kernel
            loss += tf.sqrt(tf.reduce_sum(kernel) * 0.0) * poisoned
        return loss, {}

    return dict(build_state=build_state, dataset_fn=dataset_fn, loss_fn=loss_fn)


def run(tmp_path, steps, strategy=None, task=None, data_seed=None, **task_kwargs):
    """`loop.train` on the linear task (or on `task`: its build_state, dataset_fn, loss_fn)."""
    return loop.train(
        strategy=strategy or tf.distribute.get_strategy(),
        model_dir=str(tmp_path),
        train_steps=steps,
        checkpoint_every=5,
        summary_every=5,
        progress=False,
        data_seed=data_seed,
        **(task or linear_task(**task_kwargs)),
    )


def test_loss_falls(tmp_path):
    _, history = run(tmp_path, 30)
    assert history[-1]["loss"] < 0.05 * history[0]["loss"]


def test_progress_is_written_for_whoever_watches_the_run(tmp_path):
    # tfcomp/train/loop.py: MODEL_DIR/progress.json at every summary (every 5 steps here).
    run(tmp_path, 10)
    path, seen = str(tmp_path), []
    progress = loop.read_progress(str(tmp_path))
    assert (progress["step"], progress["train_steps"], progress["eta_s"]) == (10, 10, 0)
    assert progress["steps_per_s"] > 0
    # A resumed run counts its rate from where it started.
    run(tmp_path, 15)
    assert loop.read_progress(str(tmp_path))["step"] == 15
    assert loop.read_progress(str(tmp_path / "nothing")) is None
    # Written when a run starts, before its first summary: no earlier run's step stays shown.
    loop.train(
        strategy=tf.distribute.get_strategy(),
        model_dir=str(tmp_path),
        train_steps=40,
        checkpoint_every=5,
        summary_every=100,
        progress=False,
        after_step=lambda before, step, state, metrics: seen.append(loop.read_progress(path)),
        **linear_task(),
    )
    assert seen[0]["step"] == 15 and seen[0]["eta_s"] is None and seen[-1]["step"] == 40


def test_progress_rate_forgets_a_pause(tmp_path, monkeypatch):
    # 10 steps per second, summaries every 10 steps, a 1,000 s pause (SIGSTOP) after step 10.
    clock = [0.0]
    monkeypatch.setattr(loop.time, "time", lambda: clock[0])
    reporter = loop._Reporter(True, False, str(tmp_path), 100, 10, None, start=0)
    rates = {}
    for step in range(10, 101, 10):
        clock[0] += 1.0 + (1000.0 if step == 20 else 0.0)
        reporter.write_progress(step)
        rates[step] = loop.read_progress(str(tmp_path))["steps_per_s"]
    assert rates[10] == pytest.approx(10.0)
    assert rates[20] == pytest.approx(20 / 1002)  # the pause is inside the window
    assert rates[60] == pytest.approx(50 / 1005)  # steps 10..60: the pause still inside
    assert rates[70] == pytest.approx(10.0)  # steps 20..70 in 5 s: the pause has left it
    assert loop.read_progress(str(tmp_path))["eta_s"] == 0
    reporter.close()


def test_mirrored_over_two_devices_equals_one_device(tmp_path):
    # Replica losses are divided by the replica count, so 2 replicas x 2 examples must take
    # exactly the step that 1 device takes on the same 4 examples.
    single, _ = run(tmp_path / "one", 3)
    strategy = distribute.make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    mirrored, _ = run(tmp_path / "two", 3, strategy=strategy)
    np.testing.assert_allclose(
        mirrored["model"].get_weights()[0], single["model"].get_weights()[0], rtol=1e-5
    )


def full_loss(model):
    return float(np.mean((model.predict(X, verbose=0) - Y) ** 2))


def test_resumes_from_the_last_checkpoint(tmp_path):
    first, _ = run(tmp_path, 5)
    restored, history = run(tmp_path, 5)
    assert history == []  # nothing left to do: step 5 was restored
    np.testing.assert_array_equal(
        restored["model"].get_weights()[0], first["model"].get_weights()[0]
    )
    resumed, history = run(tmp_path, 10)
    assert len(history) == 5  # steps 6..10 only
    assert int(resumed["optimizer"].iterations) == 10
    # (The data iterator restarts on resume: the order of examples is not checkpointed.)
    assert full_loss(resumed["model"]) < full_loss(first["model"])


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(loop.NonFiniteLossError, match="step 7"):
        run(tmp_path, 20, poison_from_step=7)
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert latest.endswith("ckpt-5")
    state, history = run(tmp_path, 5)  # restores step 5: nothing left to run
    assert history == []
    assert np.all(np.isfinite(state["model"].get_weights()[0]))


def test_nan_gradient_with_a_finite_loss_stops_before_saving(tmp_path):
    with pytest.raises(loop.NonFiniteLossError, match="gradient is not finite by step 8"):
        run(tmp_path, 20, poison_gradient_from_step=8)
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert latest.endswith("ckpt-5")
    state, _ = run(tmp_path, 5)
    assert np.all(np.isfinite(state["model"].get_weights()[0]))


def test_a_resumed_runs_bar_counts_only_the_steps_it_ran():
    # A run resumed at step 3,500 that takes 1 s per step: after its first step (not counted,
    # as keras does) 10 more steps in 10 s are 1 s per step, so 6,489 steps left are 6,489 s.
    bar = loop.ResumedProgbar(10000, 3500, verbose=0)
    assert bar._estimate_step_duration(3500, 100.0) == 0
    bar._estimate_step_duration(3501, 101.0)  # the first step: compiling, not counted
    assert bar._estimate_step_duration(3511, 111.0) == pytest.approx(1.0)
    # keras' own bar divides by the absolute step: 1 s per step would show as ~3 ms.
    plain = keras.utils.Progbar(10000, verbose=0)
    plain._start = 100.0
    assert plain._estimate_step_duration(3511, 111.0) == pytest.approx(11.0 / 3511)


class _ListedUnits(keras.layers.Layer):
    """Sublayers in a Python list, as ResNet's units are: tf.train.Checkpoint does not see them."""

    def __init__(self):
        super().__init__()
        self.units = [keras.layers.Dense(1, use_bias=False), keras.layers.BatchNormalization()]

    def call(self, x, training=False):
        return self.units[1](self.units[0](x), training=training)


def test_a_resumed_run_gets_back_every_variable_batch_norm_statistics_included(tmp_path):
    def build_state():
        model = keras.Sequential([keras.Input((3,)), _ListedUnits()])
        return {"model": model, "optimizer": keras.optimizers.SGD(0.1)}

    def loss_fn(state, batch):
        x, y = batch
        return tf.reduce_mean(tf.square(state["model"](x, training=True) - y)), {}

    task = {**linear_task(), "build_state": build_state, "loss_fn": loss_fn}
    first, _ = run(tmp_path, 5, task=task)
    bn = first["model"].layers[0].units[1]
    assert not np.allclose(bn.moving_mean.numpy(), 0.0)  # the statistics moved in training
    restored, history = run(tmp_path, 5, task=task)
    assert history == []
    for a, b in zip(first["model"].get_weights(), restored["model"].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # was: moving mean 0, variance 1 again


def seen_task():
    """The linear task on a shuffled stream of example indices; the metric 'seen' is the mean
    index of each step's batch, which tells the batches apart."""
    task = linear_task()

    def dataset_fn(context, global_batch=4):
        per_replica = context.get_per_replica_batch_size(global_batch)
        ds = tf.data.Dataset.from_tensor_slices((X, Y, np.arange(len(X), dtype=np.float32)))
        return ds.repeat().shuffle(len(X)).batch(per_replica)

    def loss_fn(state, batch):
        x, y, index = batch
        loss = tf.reduce_mean(tf.square(state["model"](x) - y))
        return loss, {"seen": tf.reduce_mean(index)}

    return {**task, "dataset_fn": dataset_fn, "loss_fn": loss_fn}


def test_the_data_follows_the_seed_and_a_resumed_run_does_not_replay_it(tmp_path):
    def seen(folder, steps, seed):
        _, history = run(tmp_path / folder, steps, task=seen_task(), data_seed=seed)
        return [h["seen"] for h in history]

    first = seen("a", 10, 3)
    assert seen("b", 10, 3) == first  # the same seed, the same batches
    assert seen("c", 10, 4) != first
    # Interrupted after step 5 (a checkpoint, checkpoint_every=5) and resumed: steps 6-10 are
    # not steps 1-5 again, and the same interruption gives the same batches.
    before, after = seen("d", 5, 3), seen("d", 10, 3)
    assert before == first[:5] and after != first[:5] and len(after) == 5
    assert seen("e", 5, 3) + seen("e", 10, 3) == before + after
    assert loop.resumed_seed(3, 0) != loop.resumed_seed(3, 5) != loop.resumed_seed(4, 5)
