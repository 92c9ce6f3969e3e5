"""The trainer outline every task shares: config in, model folder out.

    run(config, model_dir, TaskClass)
      a folder finished under this config: left as it is (nothing trained, nothing rewritten)
      seed, strategy and precision from the config (the data's seed: `loop.train`'s data_seed)
      the global batch checked against the replicas
      task = TaskClass(config, strategy, model_dir)   its data, step, state and evaluation
      loop.train(...)                          resumes from the latest checkpoint; the clock
                                               (train seconds over every resume) rides along
      chief only: task.finish(state, progress) evaluation and the model cards
                  model files saved atomically, then config.json, then result.json (last:
                  its presence means the folder is finished)

A task subclasses `Task`: `build_state` (model and optimizer, built inside the strategy's
scope), `dataset(per_replica_batch)` (an infinite batched tf.data pipeline; sharding across
input pipelines is done here), `loss(state, batch)`, `finish(state, progress)`, and optionally
`variables`, `gradient_transform`, `image_summaries` and `after_step`. `result.json` holds the
config, the evaluation metrics, the model cards (`tfcomp.eval.models`), the training time and
the machine, which is all the tables and figures of the README are made from.
"""

import dataclasses
import datetime
import os
import platform

import keras
import tensorflow as tf

from tfcomp import configs, hardware, io
from tfcomp.train import distribute, loop


class Task:
    """What a trainer supplies to `run` (see the module docstring); `train_steps` is set by the
    subclass's constructor, which prepares its data (and fails early, by name, on bad input)."""

    train_steps = 0
    # Optional hooks, None when the task has none (the loop then skips them).
    gradient_transform = None  # (grads, variables) -> grads: per-layer lr multipliers
    image_summaries = None  # (state, batch) -> {name: uint8 images} for TensorBoard

    def __init__(self, config, strategy, model_dir):
        self.config, self.strategy, self.model_dir = config, strategy, model_dir
        self.chief = distribute.is_chief(strategy)

    def build_state(self):
        raise NotImplementedError

    def dataset(self, batch_size):
        raise NotImplementedError

    def loss(self, state, batch):
        raise NotImplementedError

    def finish(self, state, progress):
        raise NotImplementedError

    def variables(self, state):
        return state["model"].trainable_variables

    def after_step(self, before, step, state, metrics):
        """Runs on every worker after every compiled call, which ran steps before+1 .. step
        (validation curves, collapse watches)."""


@dataclasses.dataclass
class Finished:
    """What `Task.finish` returns: models to save with their cards, and the evaluation."""

    models: dict  # name ("codec", "classifier", ...) -> (keras model, card without "file")
    metrics: dict


@dataclasses.dataclass
class Outcome:
    """What `run` returns. `result` is None on workers other than the chief."""

    state: dict | None
    history: list
    result: dict | None
    models: dict  # name -> keras model

    @property
    def metrics(self):
        return None if self.result is None else self.result["metrics"]


def machine_info():
    """The machine a result was measured on (CPU model and count, GPUs, versions)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        # Whether the CPU computes bfloat16 natively: mixed precision on the CPU is float32
        # where it does not (tfcomp.hardware).
        "cpu_bfloat16": hardware.cpu_computes_bfloat16(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def is_finished(model_dir):
    return os.path.isfile(os.path.join(model_dir, "result.json"))


def global_batch(config, strategy):
    """(config, note): the config with its global batch rounded up to a multiple of the
    replicas, so that it splits evenly (the paper's codec batch of 30 on 4 or 8 GPUs: 32; the
    segmenter's 10 on 4: 12), and for SGD the learning rate scaled linearly with it (Goyal et
    al., 2017, as A.4 does); Adam's (the codec's) is kept. The note says what changed (None when
    nothing did); the config written to config.json is the adjusted one."""
    replicas, batch = strategy.num_replicas_in_sync, config.batch_size
    if batch % replicas == 0:
        return config, None
    adjusted = -(-batch // replicas) * replicas
    changes = {"batch_size": adjusted}
    note = f"global batch {batch} -> {adjusted}, a multiple of the {replicas} replicas"
    if isinstance(config, configs.CodecConfig):
        note += "; Adam learning rate kept"
    else:
        changes["learning_rate"] = config.learning_rate * adjusted / batch
        note += f"; SGD learning rate x {adjusted}/{batch} (linear scaling)"
    print(note, flush=True)
    return dataclasses.replace(config, **changes), note


class FinishedError(ValueError):
    """A finished model folder asked to train under another config."""


def remove_stale_temporaries(model_dir):
    """Removes `.tmp-*` files an earlier process left when it was killed while saving (its
    atomic writes go through them; nothing else writes such names)."""
    if not os.path.isdir(model_dir):
        return
    for name in os.listdir(model_dir):
        path = os.path.join(model_dir, name)
        if name.startswith(".tmp-") and os.path.isfile(path):
            os.remove(path)


def finished_outcome(config, model_dir):
    """The Outcome of a folder that finished under `config` (nothing is trained or rewritten:
    a codec's id, and so every file written with it, stays valid; fields that only say what
    is measured while training may differ, `configs.EVALUATION_ONLY`); FinishedError when it
    finished under another config. None when the folder is not finished."""
    path = os.path.join(model_dir, "result.json")
    if not os.path.isfile(path):
        return None
    result = io.read_json(path)
    recorded = configs.from_dict(result["config"])
    changed = configs.differing_fields(recorded, config, training_only=True)
    if changed:
        changes = ", ".join(
            f"{name} {getattr(recorded, name)!r} -> {getattr(config, name)!r}"
            for name in sorted(changed)
        )
        raise FinishedError(
            f"{model_dir} is a finished run of another config ({changes}); use a new model "
            f"folder (or remove {path} to train on from its last checkpoint: a codec then gets "
            "new tables and a new id, and files written with the old one need the old file)"
        )
    from tfcomp.eval.models import load_keras

    models = {
        name: load_keras(os.path.join(model_dir, card["file"]), name)
        for name, card in result["models"].items()
    }
    print(f"{model_dir} finished before under this config; nothing to do", flush=True)
    return Outcome(None, [], result, models)


def run(config, model_dir, task_class, *, progress=True):
    """Trains `task_class(config, strategy, model_dir)` into `model_dir`; see the module doc.

    A folder that finished under the same config is left as it is (`finished_outcome`).
    """
    strategy = distribute.make_strategy(config.strategy)
    config, batch_note = global_batch(config, strategy)
    remove_stale_temporaries(model_dir)
    done = finished_outcome(config, model_dir)
    if done is not None:
        return done
    previous = keras.mixed_precision.global_policy()
    try:
        return _train(config, model_dir, task_class, strategy, batch_note, progress)
    finally:  # the caller's policy back (a test or a driver trains several models in turn)
        keras.mixed_precision.set_global_policy(previous)


def _train(config, model_dir, task_class, strategy, batch_note, progress):
    keras.utils.set_random_seed(config.seed)
    policy = distribute.set_precision(config.mixed_precision)
    task = task_class(config, strategy, model_dir)
    clock = loop.TrainClock()

    def build_state():
        state = task.build_state()
        state["clock"] = clock  # saved in every checkpoint: train seconds across resumes
        return state

    def dataset_fn(context):
        per_replica = context.get_per_replica_batch_size(config.batch_size)
        ds = task.dataset(per_replica)
        return ds.shard(context.num_input_pipelines, context.input_pipeline_id)

    state, history = loop.train(
        strategy=strategy,
        build_state=build_state,
        dataset_fn=dataset_fn,
        loss_fn=task.loss,
        variables_fn=task.variables,
        model_dir=model_dir,
        train_steps=task.train_steps,
        checkpoint_every=config.checkpoint_every,
        summary_every=config.summary_every,
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
        image_summaries_fn=task.image_summaries,
        gradient_transform=task.gradient_transform,
        progress=progress,
        after_step=task.after_step,
        data_seed=config.seed,
    )
    train = {
        "steps": task.train_steps,
        "seconds": clock.seconds(),
        "resumed_seconds": clock.resumed,
        "cpu_seconds": clock.cpu_seconds(),
        "final_metrics": history[-1] if history else None,
        "replicas": strategy.num_replicas_in_sync,
        "global_batch": config.batch_size,
        "batch_rule": batch_note,
        "precision": policy,
    }
    if not task.chief:
        return Outcome(state, history, None, {})
    return record(config, model_dir, task.finish(state, progress), state, history, train)


def record(config, model_dir, finished, state, history, train):
    """Saves the models, then config.json, then result.json (last); returns the Outcome."""
    cards = {}
    for name, (model, card) in finished.models.items():
        filename = f"{name}.keras"
        io.save_keras(model, os.path.join(model_dir, filename))
        cards[name] = {"file": filename, **card}
    config_record = configs.to_dict(config)
    io.write_json(config_record, os.path.join(model_dir, "config.json"))
    result = {
        "config": config_record,
        "models": cards,
        "metrics": finished.metrics,
        "train": train,
        "machine": machine_info(),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    io.write_json(result, os.path.join(model_dir, "result.json"))
    return Outcome(state, history, result, {n: m for n, (m, _) in finished.models.items()})


def lr_drop_schedule(base_lr, drops, total_steps, scaled=()):
    """Piecewise constant: base_lr, divided by 10 at each fraction `drops` of `total_steps`, and
    times `factor` after each (step, factor) of `scaled` (a codec's rollbacks)."""
    if not drops and not scaled:
        return base_lr
    changes = sorted([(max(1, int(round(f * total_steps))), 0.1) for f in drops] + list(scaled))
    boundaries, values, lr = [], [base_lr], base_lr
    for step, factor in changes:
        lr *= factor
        if boundaries and boundaries[-1] == step:
            values[-1] = lr
        else:
            boundaries.append(step)
            values.append(lr)
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
