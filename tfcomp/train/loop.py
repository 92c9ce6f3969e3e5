"""One custom training loop for every trainer and every strategy.

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so the
project trains with `strategy.run` inside a `tf.function`, for the default, mirrored and
multi-worker strategies alike. A task supplies three plain pieces:

    build_state()              -> dict of trackables (must hold 'model' and 'optimizer'),
                                  called inside strategy.scope(); the loop adds 'step'
    dataset_fn(input_context)  -> per-replica batched tf.data.Dataset (infinite)
    loss_fn(state, batch)      -> (scalar loss, dict of scalar metrics), per replica

The loop differentiates the loss with respect to `variables_fn(state)` (default: the model's
trainable variables), averages across replicas, and runs `steps_per_execution` steps inside one
compiled call: metrics are summed on the device and read back once per call (one device-to-host
synchronisation per call, not per step); checkpoints, summaries and `after_step` hooks happen at
call boundaries, the first one at or after each multiple of their period. `jit_compile` compiles
each replica's step with XLA. On GPUs the distributed dataset prefetches batches to the devices.

Checkpoints: resume from the latest; TF writes a checkpoint's files before it updates the index,
so a kill mid-save leaves the previous one as the latest. A non-finite loss or gradient in any
step of a call stops training before anything is saved, leaving the last good checkpoint intact
(with float16 loss scaling, non-finite gradients are the loss scaler's business: it skips those
steps). TensorBoard scalars and a progress bar on the chief.
"""

import collections
import json
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
    """Training wall and CPU time that survive resumes. Saved in every checkpoint, it holds the
    seconds of earlier runs up to the checkpoint this run resumed from plus this run's seconds
    so far (time a killed run spent after its last checkpoint is not counted: no model holds
    it). CPU seconds are the process's, all threads (the input pipeline's included)."""

    def __init__(self, started=None, started_cpu=None):
        self.started = time.time() if started is None else started
        self.started_cpu = time.process_time() if started_cpu is None else started_cpu
        self.resumed = 0.0  # seconds recorded in the checkpoint this run resumed from
        self.resumed_cpu = 0.0

    def seconds(self, now=None):
        return self.resumed + ((time.time() if now is None else now) - self.started)

    def cpu_seconds(self, now=None):
        """None when the run resumed from a checkpoint that did not keep CPU seconds."""
        if self.resumed_cpu is None:
            return None
        return self.resumed_cpu + ((time.process_time() if now is None else now) - self.started_cpu)

    def serialize(self):
        return json.dumps({"wall": self.seconds(), "cpu": self.cpu_seconds()})  # cpu may be null

    def deserialize(self, string_value):
        value = json.loads(string_value)
        if isinstance(value, float):  # checkpoints written before CPU time was kept
            value = {"wall": value, "cpu": None}
        self.resumed, self.resumed_cpu = value["wall"], value["cpu"]


def resumed_seed(seed, start):
    """TF's global seed for a run of `seed` that starts (or resumes) at step `start`: one
    integer per (seed, start), so an uninterrupted run and a run resumed at the same steps see
    the same data."""
    return int(np.random.SeedSequence([seed, start]).generate_state(1)[0])


def _default_variables(state):
    return state["model"].trainable_variables


def crossed(before, after, every):
    """True when a multiple of `every` lies in (before, after]: a periodic event is due."""
    return every > 0 and after // every > before // every


def every_variable(state):
    """{"KEY_variables": [every variable]} for each Keras model or layer in `state`, for the
    checkpoint. tf.train.Checkpoint does not follow sublayers that a Keras 3 layer holds in a
    Python list: a ResNet-50 alone saves 8 of its 268 variables. Its trainable ones also come
    through the optimizer; its batch-norm statistics came through nothing, so a resumed
    network started them again from 0 and 1 (checkpoints written before this keep that gap)."""
    return {
        f"{key}_variables": list(value.variables)
        for key, value in state.items()
        if isinstance(value, keras.layers.Layer)
    }


def _restore(strategy, build_state, variables_fn, ckpt_dir, max_to_keep):
    """(state, checkpoint manager) built under the strategy's scope, restored if possible."""
    with strategy.scope():
        state = build_state()
        # Create the optimizer's slots (Adam moments, momentum) now, under the strategy's
        # scope: created lazily inside the distributed tf.function they break MirroredStrategy.
        state["optimizer"].build(variables_fn(state))
        # Steps completed so far; loss_fn may read it (schedules).
        state["step"] = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        checkpoint = tf.train.Checkpoint(**state, **every_variable(state))
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=max_to_keep)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
    return state, manager


def _compiled_calls(strategy, state, loss_fn, variables_fn, gradient_transform, jit_compile):
    """A tf.function running n steps on an iterator; returns the metrics' means over them."""
    optimizer, step = state["optimizer"], state["step"]
    replicas = strategy.num_replicas_in_sync

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

    if jit_compile:
        replica_step = tf.function(replica_step, jit_compile=True)

    def one_step(iterator):
        per_replica = strategy.run(replica_step, args=(next(iterator),))
        step.assign_add(1)
        return {
            k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()
        }

    # No autograph (it converts the whole call tree, every layer's `call`): a tiny segmenter's
    # step of `make reproduce` took 51 s instead of 54; the loop is a plain tf.while_loop and
    # nothing in the steps branches on tensors.
    @tf.function(autograph=False)
    def calls(iterator, n):
        if isinstance(n, int):  # one step per call: no while loop in the graph
            return one_step(iterator)
        first = one_step(iterator)
        keys = list(first)

        def body(i, sums):
            more = one_step(iterator)
            return i + 1, [s + more[k] for s, k in zip(sums, keys)]

        _, sums = tf.while_loop(
            lambda i, sums: i < n - 1, body, (tf.constant(0), [first[k] for k in keys])
        )
        return {k: v / tf.cast(n, v.dtype) for k, v in zip(keys, sums)}

    return calls


def _check_finite(metrics, loss_scaled, current, manager):
    gradients_finite = metrics.pop("_gradients_finite") == 1.0  # every step, every replica
    if np.isfinite(metrics["loss"]) and (gradients_finite or loss_scaled):
        return
    what = f"loss is {metrics['loss']}" if not np.isfinite(metrics["loss"]) else None
    raise NonFiniteLossError(
        f"{what or 'a gradient is not finite'} by step {current}; stopped without saving, "
        f"the last good checkpoint is {manager.latest_checkpoint}"
    )


PROGRESS_FILE = "progress.json"


def read_progress(model_dir):
    """MODEL_DIR/progress.json ({step, train_steps, steps_per_s, eta_s, updated}) of a run in
    progress, or None."""
    from tfcomp import io

    path = os.path.join(model_dir, PROGRESS_FILE)
    try:
        return io.read_json(path)
    except (OSError, ValueError):
        return None


class ResumedProgbar(keras.utils.Progbar):
    """keras' progress bar for a run that resumes at step `first`: its time per step (and so
    the time left it shows) counts only the steps this process ran. keras' own bar divides the
    time since it was made by the absolute step, so a run resumed at step 3,500 of 10,000 showed
    minutes left where hours were."""

    def __init__(self, target, first, **kwargs):
        super().__init__(target, **kwargs)
        self.first = first

    def _estimate_step_duration(self, current, now):
        return super()._estimate_step_duration(max(current - self.first, 0), now)


# progress.json's rate: over the last this many summaries, so that a pause (a process stopped
# with SIGSTOP while another job has the cores, a laptop asleep) leaves it after as many.
PROGRESS_WINDOW = 5


class _Reporter:
    """Progress bar (moving averages over ~10 reports), TensorBoard scalars / images, and on
    the chief MODEL_DIR/progress.json at the start and at every summary: the step, the rate of
    this process over its last `PROGRESS_WINDOW` summaries and the time left at that rate, for
    whoever watches the run from outside (the Table 2 driver)."""

    def __init__(self, chief, progress, model_dir, train_steps, summary_every, images_fn, start):
        self.progress, self.train_steps, self.summary_every = progress, train_steps, summary_every
        self.writer = None
        if chief:
            self.writer = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
        self.images_fn = images_fn if self.writer is not None else None
        self.chief, self.bar, self.smoothed, self.preview = chief, None, {}, None
        self.model_dir, self.start = model_dir, (start, time.time())
        self.marks = collections.deque([self.start], maxlen=PROGRESS_WINDOW + 1)
        if chief:  # at once: a resumed run does not show the step and rate of an earlier one
            self.write_progress(start)

    def report(self, before, current, metrics, state, preview_fn):
        if self.progress and self.chief:
            for name, value in metrics.items():
                old = self.smoothed.get(name, value)
                self.smoothed[name] = 0.9 * old + 0.1 * value
            if self.bar is None:
                self.bar = ResumedProgbar(
                    self.train_steps, self.start[0], stateful_metrics=list(metrics)
                )
            self.bar.update(current, list(self.smoothed.items()))
        due = crossed(before, current, self.summary_every) or current == self.train_steps
        if self.writer is None or not due:
            return
        self.write_progress(current)
        with self.writer.as_default(step=current):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
            if self.images_fn is not None:
                self.preview = self.preview if self.preview is not None else preview_fn()
                for name, images in self.images_fn(state, self.preview).items():
                    tf.summary.image(name, images, max_outputs=3)

    def write_progress(self, current):
        from tfcomp import io

        now = time.time()
        if current != self.marks[-1][0]:
            self.marks.append((current, now))
        first_step, first_time = self.marks[0]
        rate = (current - first_step) / max(now - first_time, 1e-9)
        left = (self.train_steps - current) / rate if rate > 0 else None  # None: not known yet
        left = 0 if current >= self.train_steps else left
        progress = dict(step=current, train_steps=self.train_steps, steps_per_s=rate, eta_s=left)
        progress["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        io.write_json(progress, os.path.join(self.model_dir, PROGRESS_FILE))

    def close(self):
        if self.writer is not None:
            self.writer.flush()


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
    steps_per_execution=1,
    jit_compile=False,
    image_summaries_fn=None,
    gradient_transform=None,
    progress=True,
    max_to_keep=3,
    after_step=None,
    data_seed=None,
):
    """Runs `train_steps` optimisation steps in total, resuming from the latest checkpoint.

    Returns (state, history): history holds one {metric: float} per compiled call made by this
    call (the means over its `steps_per_execution` steps; one per step when that is 1).

    `gradient_transform(grads, variables)`, when given, maps the gradients before they are
    applied (per-layer learning-rate multipliers). `image_summaries_fn(state, batch)`, when
    given, returns {name: uint8 NHWC images}, written to TensorBoard with the scalars.
    `after_step(before, step, state, metrics)`, when given, runs on every worker after every
    compiled call (steps before+1 .. step) and its checkpoint (validation curves, which write on
    the chief only; collapse watches, which may raise to stop training).

    `data_seed`, when given, sets TF's global seed to `resumed_seed(data_seed, start)` before
    the dataset and the step are built: the data (shuffles, crops, mirrors: see
    `tfcomp.data.preprocess`) and the step's own random draws then follow the seed, and a run
    resumed at step `start` draws a new stream rather than replaying the batches of step 0.
    """
    chief = distribute.is_chief(strategy)
    # Every worker must take part in saving; workers other than the chief write to a scratch
    # folder that is removed afterwards.
    ckpt_dir = os.path.join(model_dir, "checkpoints")
    if not chief:
        ckpt_dir = os.path.join(model_dir, "scratch", distribute.worker_id())
    state, manager = _restore(strategy, build_state, variables_fn, ckpt_dir, max_to_keep)
    current = int(state["step"].numpy())
    if data_seed is not None:
        tf.random.set_seed(resumed_seed(data_seed, current))
    loss_scaled = isinstance(state["optimizer"], keras.optimizers.LossScaleOptimizer)
    calls = _compiled_calls(strategy, state, loss_fn, variables_fn, gradient_transform, jit_compile)
    options = None
    if tf.config.list_physical_devices("GPU"):  # batches wait on the devices, not the host
        options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn, options))
    reporter = _Reporter(
        chief, progress, model_dir, train_steps, summary_every, image_summaries_fn, current
    )

    def preview():
        return next(iter(dataset_fn(tf.distribute.InputContext())))

    history = []
    while current < train_steps:
        before, n = current, min(steps_per_execution, train_steps - current)
        # n == 1 traces a graph of one step; other counts share one graph with a while loop.
        metrics = {k: float(v) for k, v in calls(iterator, 1 if n == 1 else tf.constant(n)).items()}
        current += n
        _check_finite(metrics, loss_scaled, current, manager)
        history.append(metrics)
        reporter.report(before, current, metrics, state, preview)
        if crossed(before, current, checkpoint_every) or current == train_steps:
            manager.save(checkpoint_number=current)
        if after_step is not None:
            after_step(before, current, state, metrics)
    reporter.close()
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
    """A validation curve (Fig. 3, Fig. 4) at `path`: `evaluate(state, step)` ({name: value})
    at the first call boundary at or after every multiple of `every` steps and at step `last`, on
    the chief only, its `fields` (default: all) appended with `point(step)`; `every` <= 0 records
    nothing. `at(step)` gives what the evaluation at `step` returned in this process: a trainer's
    final evaluation reuses the curve's last point instead of evaluating the same model twice."""

    def __init__(self, strategy, *, path, every, last, evaluate, fields=None, point=None):
        self.path, self.every, self.last, self.evaluate = path, every, last, evaluate
        self.fields, self.point = fields, point
        self.chief = distribute.is_chief(strategy)
        self.latest = None  # (step, values)

    def after_step(self, before, step, state):
        if self.every <= 0 or not self.chief:
            return
        if crossed(before, step, self.every) or step == self.last:
            values = self.evaluate(state, step)
            self.latest = (step, values)
            kept = {k: values[k] for k in self.fields} if self.fields else dict(values)
            append_curve(self.path, step, {**(self.point(step) if self.point else {}), **kept})

    def at(self, step):
        return self.latest[1] if self.latest is not None and self.latest[0] == step else None
