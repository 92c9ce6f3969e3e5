"""Training speed of every trainer's step, bare and through the shared loop, side by side.

  .venv/bin/python tools/benchmark_training.py [--cases=codec,classifier_z,...] \
      [--precisions=float32,mixed_bfloat16] [--xla=off,on] [--steps=6] [--repeats=2]
      [--ablate_batchnorm] [--json=out.json] [--merge]   (keep the rows of out.json this run
      does not measure)

For each case (a trainer's step at a given network, width, input and batch): examples/s of a
bare compiled training step (forward, backward, optimizer update on one fixed batch), and of
the same step through `tfcomp.train.loop.train` (distributed iterator, metric read-back,
summaries off, checkpoints off) with `steps_per_execution` 1 and the loop's cost over the bare
step; and the training rate in multiply-accumulates per second (3 x the forward MACs, counted
from the built model) as a share of a 4096^2 float32 matrix product measured in the same run.
Each in float32 and mixed_bfloat16, without and with XLA (`jit_compile`). Timing skips each
function's first call (tracing). Bare and loop timing alternate `--repeats` times (a slow
spell of a shared machine falls on both); each rate is the median of all its timed calls, and
the loop overhead's range over the alternations is reported beside it as its noise. The case
`loop_floor` (a step that computes almost nothing) gives the loop's own cost per step in ms;
`--ablate_batchnorm` times each network's bare step again with batch norm replaced by the
identity, the share of the step batch norm takes.
"""

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfcomp import flops, io  # noqa: E402
from tfcomp.codec import Codec  # noqa: E402
from tfcomp.data.device import CodecInputs  # noqa: E402
from tfcomp.nets import registry  # noqa: E402
from tfcomp.train import job, loop  # noqa: E402
from tfcomp.train.classification import classification_step  # noqa: E402
from tfcomp.train.compression import compression_step  # noqa: E402
from tfcomp.train.joint import joint_step  # noqa: E402
from tfcomp.train.segmentation import segmentation_loss  # noqa: E402

# name -> (what, batch): the small preset's sizes and the paper's full-width networks.
CASES = {
    "codec": ("codec C=8, 128 x 128 crops (small preset)", 16),
    "codec_b32": ("codec C=8, 128 x 128 crops", 32),
    "classifier_rgb_q": ("ResNet-50 width 0.25, RGB 128 x 128 (small preset)", 64),
    "classifier_z_q": ("cResNet-51 width 0.25, z 16 x 16 x 8 (small preset)", 64),
    # ResNet-50 on reconstructions with the decoder in the step (z of the 144 px store, decoded,
    # cropped to 128); decoded once before training (`decode_once`), the step is the RGB one.
    "classifier_recon_q": (
        "ResNet-50 width 0.25, reconstructions decoded in the step, z 18 x 18 x 8 (small preset)",
        64,
    ),
    "classifier_rgb": ("ResNet-50 width 1, RGB 224 x 224 (the paper's)", 32),
    "classifier_z": ("cResNet-51 width 1, z 28 x 28 x 8 (the paper's)", 32),
    "segmenter_z": ("cResNet-51-d width 1, z 40 x 40 x 8, 21 classes (the paper's)", 10),
    "joint": ("codec C=8 + cResNet-51 width 1, 224 x 224 (Eq. 2)", 16),
    # The loop's own cost per step: the small preset's RGB batch through a step that computes
    # almost nothing (global average pool + dense), so loop minus bare is the loop's time.
    "loop_floor": ("global pool + dense on a 64 x 128 x 128 x 3 batch (the loop's own cost)", 64),
}


def matmul_gmacs(n=4096, repeats=5):
    a = tf.random.normal([n, n])
    fn = tf.function(lambda x: tf.reduce_sum(tf.matmul(x, x)))
    fn(a)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(a).numpy()
        times.append(time.perf_counter() - start)
    return n**3 / statistics.median(times) / 1e9


def build_case(name):
    """(state builder, batch, loss_fn, forward MACs per example) of a case."""
    rng = np.random.default_rng(0)
    batch = CASES[name][1]
    if name.startswith("codec"):
        images = rng.integers(0, 256, (batch, 128, 128, 3)).astype(np.uint8)

        def build():
            codec = Codec(channels=8)
            codec(tf.zeros([1, 128, 128, 3]))
            return {"model": codec, "optimizer": keras.optimizers.Adam(1e-4)}

        def loss(state, x):
            return compression_step(state["model"], x, 600.0, 0.8)

        codec = build()["model"]
        macs = flops.count_macs(codec.encoder, (128, 128, 3))
        macs += flops.count_macs(codec.decoder, (16, 16, 8))
        return build, images, loss, macs
    if name == "joint":
        images = rng.integers(0, 256, (batch, 224, 224, 3)).astype(np.uint8)
        labels = rng.integers(0, 1000, batch).astype(np.int32)

        def build():
            codec = Codec(channels=8)
            codec(tf.zeros([1, 224, 224, 3]))
            classifier = registry.build("cresnet51", 1000, 8, 1.0)
            classifier(tf.zeros([1, 28, 28, 8]))
            return {
                "model": codec,
                "classifier": classifier,
                "optimizer": keras.optimizers.SGD(1e-4, momentum=0.9),
            }

        def loss(state, data):
            kwargs = dict(mode="joint", gamma=0.001, beta=600.0, target=0.8, weight_decay=1e-4)
            return joint_step(state["model"], state["classifier"], *data, **kwargs)

        state = build()
        macs = flops.count_macs(state["model"].encoder, (224, 224, 3))
        macs += flops.count_macs(state["model"].decoder, (28, 28, 8))
        macs += flops.count_macs(state["classifier"], (28, 28, 8))
        return build, (images, labels), loss, macs
    if name == "classifier_recon_q":
        z = rng.integers(-2, 3, (batch, 18, 18, 8)).astype(np.float32)
        labels = rng.integers(0, 10, batch).astype(np.int32)
        codec = Codec(channels=8)
        codec(tf.zeros([1, 144, 144, 3]))
        inputs = CodecInputs("reconstructed", codec, 128, from_store=True)

        def build():
            model = registry.build("resnet50", 10, 3, 0.25)
            model(tf.zeros([1, 128, 128, 3]))
            return {"model": model, "optimizer": keras.optimizers.SGD(1e-4, momentum=0.9)}

        def loss(state, data):
            x = inputs(data[0], training=True)
            return classification_step(state["model"], x, data[1], 1e-4)

        # Rows count 3x forward MACs (forward and backward); the decoder runs forward only.
        macs = flops.count_macs(codec.decoder, (18, 18, 8)) / 3
        macs += flops.count_macs(build()["model"], (128, 128, 3))
        return build, (z, labels), loss, macs
    if name == "loop_floor":
        x = rng.uniform(0, 255, (batch, 128, 128, 3)).astype(np.float32)
        y = rng.integers(0, 10, batch).astype(np.int32)

        def build():
            model = keras.Sequential(
                [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)]
            )
            model(tf.zeros([1, 128, 128, 3]))
            return {"model": model, "optimizer": keras.optimizers.SGD(1e-4, momentum=0.9)}

        def loss(state, data):
            inputs, labels = data
            logits = tf.cast(state["model"](inputs, training=True), tf.float32)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            return tf.reduce_mean(ce), {}

        return build, (x, y), loss, flops.count_macs(build()["model"], (128, 128, 3))
    net, shape, classes = {
        "classifier_rgb_q": ("resnet50", (128, 128, 3), 10),
        "classifier_z_q": ("cresnet51", (16, 16, 8), 10),
        "classifier_rgb": ("resnet50", (224, 224, 3), 1000),
        "classifier_z": ("cresnet51", (28, 28, 8), 1000),
        "segmenter_z": ("cresnet51_d", (40, 40, 8), 21),
    }[name]
    width = 0.25 if name.endswith("_q") else 1.0
    x = rng.uniform(0, 255 if shape[-1] == 3 else 2, (batch, *shape)).astype(np.float32)
    dilated = registry.get(net).dilated
    y = (
        rng.integers(0, classes, (batch, shape[0] * 8, shape[1] * 8)).astype(np.int32)
        if dilated
        else rng.integers(0, classes, batch).astype(np.int32)
    )

    def build():
        model = registry.build(net, classes, shape[-1], width)
        model(tf.zeros([1, *shape]))
        return {"model": model, "optimizer": keras.optimizers.SGD(1e-4, momentum=0.9)}

    def loss(state, data):
        inputs, labels = data
        if dilated:
            ce, _ = segmentation_loss(state["model"](inputs, training=True)["logits"], labels)
            return ce, {}
        return classification_step(state["model"], inputs, labels, 1e-4)

    macs = flops.count_macs(build()["model"], shape)
    return build, (x, y), loss, macs


def bare_times(build, data, loss_fn, steps, jit_compile):
    """Seconds of each of `steps` calls of one compiled training step on a fixed batch (the
    first, tracing call excluded)."""
    state = build()
    state["step"] = tf.Variable(0, dtype=tf.int64)
    variables = [
        v for k in ("model", "classifier") if k in state for v in state[k].trainable_variables
    ]
    state["optimizer"].build(variables)
    batch = tf.nest.map_structure(tf.constant, data)

    @tf.function(jit_compile=jit_compile)
    def step(batch):
        with tf.GradientTape() as tape:
            loss, _ = loss_fn(state, batch)
        state["optimizer"].apply(tape.gradient(loss, variables), variables)
        return loss

    step(batch).numpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(batch).numpy()
        times.append(time.perf_counter() - start)
    return times


def loop_times(build, data, loss_fn, steps, jit_compile):
    """Seconds between `steps` consecutive steps of loop.train (steps_per_execution 1), the
    first call excluded."""
    stamps = []

    def dataset_fn(context):
        return tf.data.Dataset.from_tensors(data).repeat()

    def variables_fn(state):
        keys = ("model", "classifier")
        return [v for k in keys if k in state for v in state[k].trainable_variables]

    with tempfile.TemporaryDirectory() as model_dir:
        loop.train(
            strategy=tf.distribute.get_strategy(),
            build_state=build,
            dataset_fn=dataset_fn,
            loss_fn=loss_fn,
            variables_fn=variables_fn,
            model_dir=model_dir,
            train_steps=steps + 1,
            checkpoint_every=10**9,
            summary_every=10**9,
            jit_compile=jit_compile,
            progress=False,
            after_step=lambda before, step, state, metrics: stamps.append(time.perf_counter()),
        )
    return list(np.diff(stamps))


@contextlib.contextmanager
def without_batchnorm():
    """Every Keras batch-norm layer built and called in this block returns its input: the step
    time saved is what batch norm (forward and backward, memory-bound) costs in the step."""
    call = keras.layers.BatchNormalization.call
    keras.layers.BatchNormalization.call = lambda self, inputs, training=None, mask=None: inputs
    try:
        yield
    finally:
        keras.layers.BatchNormalization.call = call


def bare_rate_without_batchnorm(build, data, loss_fn, steps, jit_compile, repeats):
    """Examples/s of the bare step with batch norm replaced by the identity (median of
    `repeats` x `steps` timed calls, as the bare rate of `side_by_side`)."""
    with without_batchnorm():
        times = []
        for _ in range(repeats):
            times += bare_times(build, data, loss_fn, steps, jit_compile)
    return len(tf.nest.flatten(data)[0]) / statistics.median(times)


def side_by_side(build, data, loss_fn, steps, jit_compile, repeats):
    """(bare ex/s, loop ex/s, per-alternation overheads): `repeats` alternations of `steps`
    bare steps then `steps` loop steps, each rate from the median of all its timed calls, so a
    slow spell of the machine falls on both and the spread of the alternations shows the noise."""
    batch = len(tf.nest.flatten(data)[0])
    bare, through, overheads = [], [], []
    for _ in range(repeats):
        b = bare_times(build, data, loss_fn, steps, jit_compile)
        t = loop_times(build, data, loss_fn, steps, jit_compile)
        bare += b
        through += t
        overheads.append(statistics.median(t) / statistics.median(b) - 1)
    return batch / statistics.median(bare), batch / statistics.median(through), overheads


def merged_rows(earlier, rows):
    """`earlier`'s rows (a report, or None) that `rows` do not replace, then `rows`: an earlier
    row stays until this run has measured its (case, precision, xla), so a run stopped early
    keeps every row it did not reach. Earlier rows keep their own run's matmul rate and machine
    (`tfcomp.train.job.machine_info`, when the earlier file recorded one)."""
    key = lambda r: (r["case"], r["precision"], r["xla"])  # noqa: E731
    replaced = {key(r) for r in rows}
    kept = []
    for row in (earlier or {}).get("rows", []):
        if key(row) not in replaced:
            own = {"matmul_gmacs_per_s": earlier["matmul_gmacs_per_s"]}
            if earlier.get("machine"):
                own["machine"] = earlier["machine"]
            kept.append({**own, **row})
    return kept + list(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--xla", default="off,on")
    parser.add_argument("--steps", type=int, default=6, help="timed calls per alternation")
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="alternations of bare and loop timing per row (the overhead's spread over them is "
        "reported)",
    )
    parser.add_argument(
        "--ablate_batchnorm",
        action="store_true",
        help="also time each network's bare step with batch norm replaced by the identity: the "
        "share of the step it takes (what limits a network below the matmul rate)",
    )
    parser.add_argument("--json", help="write the rows here (after each row)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of --json that this run does not measure (each row keeps the "
        "matmul rate of its own run, its share is of that)",
    )
    args = parser.parse_args()
    matmul = matmul_gmacs()
    print(f"4096^2 float32 matmul: {matmul:.0f} GMAC/s")
    rows, earlier = [], None
    machine = job.machine_info()
    if args.merge and args.json and os.path.exists(args.json):
        earlier = io.read_json(args.json)

    def report():
        every = merged_rows(earlier, rows)
        return {
            "matmul_gmacs_per_s": sorted({r.get("matmul_gmacs_per_s", matmul) for r in every}),
            "cpu_count": os.cpu_count(),
            "machine": dict(machine, date=time.strftime("%Y-%m-%d")),
            "rows": sorted(every, key=lambda r: list(CASES).index(r["case"])),
        }

    for name in args.cases.split(","):
        for precision in args.precisions.split(","):
            keras.mixed_precision.set_global_policy(precision)
            build, data, loss_fn, macs = build_case(name)
            for xla in args.xla.split(","):
                jit = xla == "on"
                try:
                    bare, through, overheads = side_by_side(
                        build, data, loss_fn, args.steps, jit, args.repeats
                    )
                except Exception as error:  # XLA may not compile every op here: say so
                    print(f"{name} {precision} xla={xla}: failed ({type(error).__name__})")
                    rows.append({"case": name, "precision": precision, "xla": jit,
                                 "error": str(error).splitlines()[0][:200],
                                 "matmul_gmacs_per_s": matmul})  # fmt: skip
                    continue
                rate = 3 * macs * bare / 1e9
                row = {
                    "case": name,
                    "what": CASES[name][0],
                    "batch": CASES[name][1],
                    "precision": precision,
                    "xla": jit,
                    "bare_examples_per_s": bare,
                    "loop_examples_per_s": through,
                    "loop_overhead": bare / through - 1,
                    "loop_ms_per_step": 1000 * CASES[name][1] * (1 / through - 1 / bare),
                    "loop_overhead_range": [min(overheads), max(overheads)],
                    "timed_steps": args.steps * args.repeats,
                    "train_gmacs_per_s": rate,
                    "share_of_matmul": rate / matmul,
                    "forward_macs": macs,
                    "matmul_gmacs_per_s": matmul,
                }
                if args.ablate_batchnorm and name not in ("codec", "codec_b32", "loop_floor"):
                    without = bare_rate_without_batchnorm(
                        build, data, loss_fn, args.steps, jit, args.repeats
                    )
                    row["bare_examples_per_s_without_batchnorm"] = without
                    row["batchnorm_share"] = 1 - bare / without
                    print(
                        f"  without batch norm: bare {without:.1f} ex/s; batch norm takes "
                        f"{100 * row['batchnorm_share']:.0f}% of the step"
                    )
                rows.append(row)
                print(
                    f"{name:<17} {precision:<15} xla={xla:<3} bare {bare:8.1f} ex/s  loop "
                    f"{through:8.1f} ex/s ({100 * row['loop_overhead']:+5.1f}%, "
                    f"{100 * min(overheads):+.1f}..{100 * max(overheads):+.1f}%)  "
                    f"{rate:6.1f} GMAC/s = {100 * rate / matmul:5.1f}% of matmul"
                )
                if args.json:  # after every row: a run stopped early keeps what it measured
                    io.write_json(report(), args.json)
    keras.mixed_precision.set_global_policy("float32")
    if args.json:
        io.write_json(report(), args.json)


if __name__ == "__main__":
    main()
