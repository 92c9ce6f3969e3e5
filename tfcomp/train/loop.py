"""One custom training loop for every trainer and every strategy.

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so the
project trains with `strategy.run` inside a `tf.function`, for the default, mirrored and
multi-worker strategies alike. A task supplies three plain pieces:

    build_state()              -> dict of trackables (must hold 'model' and 'optimizer'),
                                  called inside strategy.scope(); the loop adds 'step'
    dataset_fn(input_context)  -> per-replica batched tf.data.Dataset (infinite)
    loss_fn(state, batch)      -> (scalar loss, dict of scalar metrics), per replica

The loop differentiates the loss with respect to `variables_fn(state)` (default: the model's
trainable variables), averages across replicas, and handles checkpoints (resume from the latest;
TF writes a checkpoint's files before it updates the index, so a kill mid-save leaves the previous
one as the latest), TensorBoard scalars, a progress bar, and a non-finite loss or gradient, which
stops training before anything is saved, leaving the last good checkpoint intact (with float16
loss scaling, non-finite gradients are the loss scaler's business: it skips those steps).
"""

import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from tfcomp.train import distribute


class NonFiniteLossError(FloatingPointError):
    """Raised when the loss or a gradient becomes NaN or infinite; the last checkpoint is kept."""


def _all_finite(tensors):
    """1.0 when every element of every (non-None) tensor is finite, else 0.0."""
    flags = [tf.reduce_all(tf.math.is_finite(t)) for t in tensors if t is not None]
    return tf.cast(tf.reduce_all(tf.stack(flags)), tf.float32) if flags else tf.constant(1.0)


class TrainClock(tf.train.experimental.PythonState):
    """Training wall time that survives resumes. Saved in every checkpoint, it holds the seconds
    of earlier runs up to the checkpoint this run resumed from plus this run's seconds so far
    (time a killed run spent after its last checkpoint is not counted: no model holds it)."""

    def __init__(self, started=None):
        self.started = time.time() if started is None else started
        self.resumed = 0.0  # seconds recorded in the checkpoint this run resumed from

    def seconds(self, now=None):
        return self.resumed + ((time.time() if now is None else now) - self.started)

    def serialize(self):
        return repr(self.seconds())

    def deserialize(self, string_value):
        self.resumed = float(string_value)


def _default_variables(state):
    return state["model"].trainable_variables


def train(
    *,
    strategy,
    build_state,
    dataset_fn,
    loss_fn,
    model_dir,
    train_steps,
    variables_fn=_default_variables,
    checkpoint_every=500,
    summary_every=50,
    image_summaries_fn=None,
    gradient_transform=None,
    progress=True,
    max_to_keep=3,
    after_step=None,
):
    """Runs `train_steps` optimisation steps in total, resuming from the latest checkpoint.

    Returns (state, history): history holds one {metric: float} per step run by this call.

    `gradient_transform(grads, variables)`, when given, maps the gradients before they are
    applied (per-layer learning-rate multipliers). `image_summaries_fn(state, batch)`, when
    given, returns {name: uint8 NHWC images}, written to TensorBoard every `summary_every` steps.
    `after_step(step, state, metrics)`, when given, runs on every worker after every step and its
    checkpoint (validation curves, which write on the chief only; collapse watches, which may
    raise to stop training).
    """
    chief = distribute.is_chief(strategy)
    # Every worker must take part in saving; workers other than the chief write to a scratch
    # folder that is removed afterwards.
    ckpt_dir = os.path.join(model_dir, "checkpoints")
    if not chief:
        ckpt_dir = os.path.join(model_dir, "scratch", distribute.worker_id())
    with strategy.scope():
        state = build_state()
        # Create the optimizer's slots (Adam moments, momentum) now, under the strategy's
        # scope: created lazily inside the distributed tf.function they break MirroredStrategy.
        state["optimizer"].build(variables_fn(state))
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        state["step"] = step  # steps completed so far; loss_fn may read it (schedules)
        checkpoint = tf.train.Checkpoint(**state)
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=max_to_keep)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
    start = int(step.numpy())

    optimizer = state["optimizer"]
    loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    replicas = strategy.num_replicas_in_sync
    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))

    def replica_step(batch):
        variables = variables_fn(state)
        with tf.GradientTape() as tape:
            loss, metrics = loss_fn(state, batch)
            # Each replica's loss is a mean over its examples; dividing by the number of
            # replicas makes the all-reduced (summed) gradient that of the global mean.
            scaled = optimizer.scale_loss(loss / replicas)
        grads = tape.gradient(scaled, variables)
        if gradient_transform is not None:
            grads = gradient_transform(grads, variables)
        finite = _all_finite(grads)
        optimizer.apply(grads, variables)
        return {"loss": loss, **metrics, "_gradients_finite": finite}

    @tf.function
    def distributed_step(iterator):
        per_replica = strategy.run(replica_step, args=(next(iterator),))
        step.assign_add(1)
        return {
            k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()
        }

    writer = tf.summary.create_file_writer(os.path.join(model_dir, "train")) if chief else None
    preview = None
    if writer is not None and image_summaries_fn is not None:
        preview = next(iter(dataset_fn(tf.distribute.InputContext())))
    bar = None
    smoothed = {}  # exponential moving averages shown by the progress bar
    history = []
    for current in range(start + 1, train_steps + 1):
        metrics = {k: float(v) for k, v in distributed_step(iterator).items()}
        gradients_finite = metrics.pop("_gradients_finite") == 1.0  # on every replica
        if not np.isfinite(metrics["loss"]) or not (gradients_finite or loss_scaled):
            what = (
                f"loss is {metrics['loss']}"
                if not np.isfinite(metrics["loss"])
                else ("a gradient is not finite")
            )
            raise NonFiniteLossError(
                f"{what} at step {current}; stopped without saving, the last "
                f"good checkpoint is {manager.latest_checkpoint}"
            )
        history.append(metrics)
        if progress and chief:
            for name, value in metrics.items():
                smoothed[name] = (
                    value if name not in smoothed else 0.9 * smoothed[name] + 0.1 * value
                )
            if bar is None:
                # Metrics are shown as moving averages over ~10 steps, not since the start.
                bar = keras.utils.Progbar(train_steps, stateful_metrics=list(metrics))
            bar.update(current, list(smoothed.items()))
        if writer is not None and (current % summary_every == 0 or current == train_steps):
            with writer.as_default(step=current):
                for name, value in metrics.items():
                    tf.summary.scalar(name, value)
                if preview is not None:
                    for name, images in image_summaries_fn(state, preview).items():
                        tf.summary.image(name, images, max_outputs=3)
        if current % checkpoint_every == 0 or current == train_steps:
            manager.save(checkpoint_number=current)
        if after_step is not None:
            after_step(current, state, metrics)
    if writer is not None:
        writer.flush()
    if not chief:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return state, history


def append_curve(path, step, values):
    """Appends {step, **values} to the JSON list at `path` (a validation curve), dropping points
    at or after `step`: a resumed run repeats the steps after its last checkpoint."""
    from tfcomp import io

    curve = io.read_json(path) if os.path.exists(path) else []
    curve = [c for c in curve if c["step"] < step]
    curve.append({"step": step, **values})
    io.write_json(curve, path)


class Curve:
    """A validation curve (Fig. 3, Fig. 4) at `path`: `evaluate(state, step)` appended every
    `every` steps and at step `last`, on the chief only; `every` <= 0 records nothing."""

    def __init__(self, strategy, *, path, every, last, evaluate):
        self.path, self.every, self.last, self.evaluate = path, every, last, evaluate
        self.chief = distribute.is_chief(strategy)

    def after_step(self, step, state):
        if self.every <= 0 or not self.chief:
            return
        if step % self.every == 0 or step == self.last:
            append_curve(self.path, step, self.evaluate(state, step))
