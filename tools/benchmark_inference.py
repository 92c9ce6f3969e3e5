"""The paper's Fig. 12 on this machine: inference time per image, measured side by side.

  .venv/bin/python tools/benchmark_inference.py [--config=paper|small|tiny] [--width=1.0] \
      [--channels=8] [--batches=1,64] [--repeats=5] \
      [--classifier_dir=runs/imagenette_cls/cresnet51_z --dataset=folder:...] [--json=out.json]
      [--precisions=float32,mixed_bfloat16,bfloat16,mixed_bfloat16_frozen]

For cResNet-39/51/72 on z (28 x 28 x C) and for decoder + ResNet-50/71 on reconstructed RGB
(224 x 224), at the config's batch sizes and width (the paper preset: batch 1 and 64, full width),
in float32 and under mixed_bfloat16: median seconds per image, the ratios decoder+ResNet /
cResNet, and each network's achieved GMAC/s beside a 4096^2 float32 (and bfloat16) matrix
product's on the same machine (n^3 multiply-accumulates). With --classifier_dir, also the top-1
accuracy of that trained classifier in float32 and bfloat16.

--precisions adds inference variants: `bfloat16` (the Keras policy that stores the weights in
bfloat16, so no per-call float32 -> bfloat16 cast of the kernels) and `<policy>_frozen` (the
variables folded into graph constants). Frozen matters at batch 1 under bfloat16: oneDNN's bf16
convolutions want their weights in a blocked, pair-interleaved (VNNI) layout, and a weight that is
a variable is reordered into it on every call (about 17 ms for cResNet-51's 29.6M weights on a
2-core CPU, nearly as long as all its convolutions at batch 1); a constant weight is reordered once
and cached. float32 convolutions read the plain layout and need no reorder.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

# TF-internal module (the TF 2 freezing utility): variables -> graph constants.
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)

from tfcomp import configs, flops  # noqa: E402
from tfcomp.codec.model import Decoder  # noqa: E402
from tfcomp.nets import registry  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16", "bfloat16")
PAIRS = (("resnet50", "cresnet51"), ("resnet71", "cresnet72"), (None, "cresnet39"))


def median_seconds(fn, x, repeats):
    fn(x)  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gmacs(dtype, n=4096, repeats=5):
    a = tf.random.normal([n, n], dtype=tf.float32)
    a = tf.cast(a, dtype)
    fn = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    return n**3 / median_seconds(fn, a, repeats) / 1e9


def network_fn(model, key):
    return tf.function(lambda x: tf.reduce_sum(tf.cast(model(x)[key], tf.float32)))


def decoder_fn(decoder):
    return tf.function(lambda z: tf.reduce_sum(tf.cast(decoder(z), tf.float32)))


def frozen(fn, x):
    """`fn` for inputs shaped like `x`, with the model's variables folded into graph constants."""
    graph = convert_variables_to_constants_v2(fn.get_concrete_function(tf.TensorSpec(x.shape)))
    return lambda inputs: graph(inputs)[0]


def time_all(width, channels, batches, repeats, freeze=False, repeats_batch1=None):
    """{(name, batch): seconds per image} and {name: MACs per image} under the global policy;
    with `freeze`, of the networks with their variables frozen into constants."""

    def seconds_per_image(fn, x, batch):
        fn = frozen(fn, x) if freeze else fn
        count = repeats_batch1 if batch == 1 and repeats_batch1 else repeats
        return median_seconds(fn, x, count) / batch

    decoder = Decoder()
    decoder(tf.zeros([1, 28, 28, channels]))
    models = {"decoder": decoder}
    macs = {"decoder": flops.count_macs(decoder, (28, 28, channels))}
    for rgb, compressed in PAIRS:
        for name in filter(None, (rgb, compressed)):
            shape = (224, 224, 3) if registry.get(name).root else (28, 28, channels)
            model = registry.build(name, 1000, shape[-1], width)
            macs[name] = flops.count_macs(model, shape)
            models[name] = (model, shape)
    seconds = {}
    for batch in batches:
        z = tf.random.normal([batch, 28, 28, channels])
        rgb = tf.random.uniform([batch, 224, 224, 3], 0, 255)
        seconds[("decoder", batch)] = seconds_per_image(decoder_fn(decoder), z, batch)
        for name, (model, shape) in [(k, v) for k, v in models.items() if k != "decoder"]:
            x = rgb if shape[-1] == 3 else z
            seconds[(name, batch)] = seconds_per_image(network_fn(model, "logits"), x, batch)
            print(f"  {name:<10} batch {batch:<3} {1e3 * seconds[(name, batch)]:8.2f} ms/image")
    return seconds, macs


def table(seconds, macs, batches, matmul):
    rows = []
    for rgb, compressed in PAIRS:
        for batch in batches:
            c = seconds[(compressed, batch)]
            row = {
                "batch": batch,
                "compressed_net": compressed,
                "compressed_ms": 1e3 * c,
                "compressed_gmacs_per_s": macs[compressed] / c / 1e9,
                "compressed_fraction_of_matmul": macs[compressed] / c / 1e9 / matmul,
            }
            if rgb:
                r = seconds[(rgb, batch)] + seconds[("decoder", batch)]
                row.update(
                    rgb_net=f"decoder+{rgb}",
                    rgb_ms=1e3 * r,
                    rgb_gmacs_per_s=(macs[rgb] + macs["decoder"]) / r / 1e9,
                    rgb_fraction_of_matmul=(macs[rgb] + macs["decoder"]) / r / 1e9 / matmul,
                    time_ratio=r / c,
                    mac_ratio=(macs[rgb] + macs["decoder"]) / macs[compressed],
                )
            rows.append(row)
    return rows


def print_table(title, rows, matmul):
    print(f"\n{title} (matmul 4096^2: {matmul:.0f} GMAC/s)")
    print(
        f"{'pair':<28}{'batch':>6}{'ms/img':>16}{'GMAC/s':>16}{'time ratio':>12}{'MAC ratio':>11}"
    )
    for r in rows:
        pair = f"{r.get('rgb_net', '-')} vs {r['compressed_net']}"
        ms = f"{r.get('rgb_ms', float('nan')):.1f}/{r['compressed_ms']:.1f}"
        g = f"{r.get('rgb_gmacs_per_s', float('nan')):.0f}/{r['compressed_gmacs_per_s']:.0f}"
        ratio = f"{r['time_ratio']:.2f}" if "time_ratio" in r else "-"
        mac = f"{r['mac_ratio']:.2f}" if "mac_ratio" in r else "-"
        print(f"{pair:<28}{r['batch']:>6}{ms:>16}{g:>16}{ratio:>12}{mac:>11}")


def classifier_accuracy(classifier_dir, dataset, limit, policy):
    """Top-1 of a trained classifier on `limit` validation examples under `policy`."""
    from tfcomp.data import classification
    from tfcomp.data.device import CodecInputs
    from tfcomp.eval.classification import evaluate_classifier
    from tfcomp.eval.models import load_trained

    keras.mixed_precision.set_global_policy("float32")
    trained = load_trained(classifier_dir, "classifier")
    config = configs.load(os.path.join(classifier_dir, "config.json"))
    keras.mixed_precision.set_global_policy(policy)
    model_config = trained.model.get_config()
    model_config.pop("dtype", None)  # take the global policy, not the saved float32 one
    model = trained.model.__class__.from_config(model_config)
    assert model.compute_dtype == ("bfloat16" if policy == "mixed_bfloat16" else "float32")
    size = classification.model_crop_size(trained.input_mode, config.crop_size)
    model(tf.zeros([1, size, size, trained.model.input_channels]))
    model.set_weights(trained.model.get_weights())
    examples, _, _ = classification.labelled_dataset(dataset or config.dataset, "val", limit=limit)
    pipeline = classification.classification_pipeline(
        examples,
        input_mode=trained.input_mode,
        training=False,
        batch_size=50,
        resize=config.resize,
        crop_size=config.crop_size,
    )
    inputs = CodecInputs(trained.input_mode, trained.codec, config.crop_size, from_store=False)
    result = evaluate_classifier(model, pipeline, transform=lambda x: inputs(x, False))
    keras.mixed_precision.set_global_policy("float32")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="paper", help="preset: paper, small or tiny")
    parser.add_argument("--width", type=float, help="default: the config's bench_width")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--batches", help="comma-separated; default: the config's bench_batches")
    parser.add_argument("--repeats", type=int, help="default: the config's bench_repeats")
    parser.add_argument(
        "--repeats_batch1", type=int, help="timed calls at batch 1 (default: --repeats)"
    )
    parser.add_argument(
        "--precisions",
        default="float32,mixed_bfloat16",
        help="comma-separated: float32, mixed_bfloat16, bfloat16, each optionally +'_frozen'",
    )
    parser.add_argument("--classifier_dir")
    parser.add_argument("--dataset")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--json")
    args = parser.parse_args()
    config = configs.get("eval", args.config)
    args.width = config.bench_width if args.width is None else args.width
    args.repeats = config.bench_repeats if args.repeats is None else args.repeats
    batches = [int(b) for b in args.batches.split(",")] if args.batches else config.bench_batches
    precisions = args.precisions.split(",")
    for precision in precisions:
        if precision.removesuffix("_frozen") not in PRECISIONS:
            parser.error(f"unknown precision {precision!r}; expected {PRECISIONS}[_frozen]")
    result = {"width": args.width, "channels": args.channels, "cpu_count": os.cpu_count()}
    for precision in precisions:
        policy = precision.removesuffix("_frozen")
        keras.mixed_precision.set_global_policy(policy)
        matmul = matmul_gmacs(tf.float32 if policy == "float32" else tf.bfloat16)
        print(f"{precision}: timing networks (width {args.width}, C = {args.channels})")
        seconds, macs = time_all(
            args.width,
            args.channels,
            batches,
            args.repeats,
            freeze=precision.endswith("_frozen"),
            repeats_batch1=args.repeats_batch1,
        )
        rows = table(seconds, macs, batches, matmul)
        print_table(precision, rows, matmul)
        result[precision] = {"matmul_gmacs_per_s": matmul, "rows": rows, "macs": macs}
    keras.mixed_precision.set_global_policy("float32")
    if "float32" in result:
        for precision in [p for p in precisions if p != "float32"]:
            speedups = {
                f"{r32.get('rgb_net', '-')} vs {r32['compressed_net']} @ {r32['batch']}": {
                    "compressed_bf16_speedup": r32["compressed_ms"] / r16["compressed_ms"],
                    **(
                        {"rgb_bf16_speedup": r32["rgb_ms"] / r16["rgb_ms"]}
                        if "rgb_ms" in r32
                        else {}
                    ),
                }
                for r32, r16 in zip(result["float32"]["rows"], result[precision]["rows"])
            }
            # The default run's key is kept: mixed_bfloat16 over float32.
            key = "bf16_speedups" if precision == "mixed_bfloat16" else f"{precision}_speedups"
            result[key] = speedups
            print(f"\n{precision} speed-up over float32:")
            print(json.dumps(speedups, indent=2))
    if args.classifier_dir:
        accuracy = {
            p: classifier_accuracy(args.classifier_dir, args.dataset, args.limit, p)
            for p in ("float32", "mixed_bfloat16")
        }
        result["bf16_accuracy"] = accuracy
        print("classifier accuracy float32 vs bfloat16:", json.dumps(accuracy))
    if args.json:
        from tfcomp import io

        io.write_json(result, args.json)


if __name__ == "__main__":
    main()
