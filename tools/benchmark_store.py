"""Training-input throughput: compressed store vs running the encoder vs plain JPEG decoding.

  .venv/bin/python tools/benchmark_store.py --store=runs/store_c8 \
      --codec=runs/imagenette_c8/codec.keras --dataset=folder:../shared/datasets/imagenette2

Measured side by side in one run, examples per second through each input pipeline (batch 64,
training augmentation, no cache), and a cResNet-51 training step's examples per second at the
same width, to show whether entropy decoding is the bottleneck of training from a store.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfcomp import configs, io  # noqa: E402
from tfcomp.eval.models import load_codec  # noqa: E402
from tfcomp.nets import registry  # noqa: E402
from tfcomp.train.classification import classification_step, classifier_inputs  # noqa: E402


def throughput(pipeline, batches, batch_size):
    iterator = iter(pipeline)
    next(iterator)  # start-up (file listing, tracing) is not counted
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--codec", required=True)
    parser.add_argument("--dataset", required=True, help="the source the store was made from")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--json")
    args = parser.parse_args()
    codec = load_codec(args.codec)

    def pipeline(dataset, input_mode):
        config = configs.get("classifier", dataset=dataset, input_mode=input_mode, codec=args.codec)
        common = dict(training=True, batch_size=args.batch_size, limit=None)
        return classifier_inputs(config, "train", codec=codec, **common)[0]

    pipelines = {
        "store (entropy decode -> z)": pipeline(f"store:{args.store}", "compressed"),
        "compressed mode (JPEG -> encoder -> z)": pipeline(args.dataset, "compressed"),
        "rgb (JPEG decode only)": pipeline(args.dataset, "rgb"),
    }
    result = {}
    for name, pipeline in pipelines.items():
        batches = args.batches if "encoder" not in name else max(2, args.batches // 5)
        result[name] = throughput(pipeline, batches, args.batch_size)
        print(f"{name:<42} {result[name]:9.1f} examples/s")
    model = registry.build("cresnet51", 10, codec.channels, args.width)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    inputs, labels = next(iter(pipelines["store (entropy decode -> z)"]))

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss, _ = classification_step(model, x, y, 1e-4)
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    step(inputs, labels)
    start = time.perf_counter()
    for _ in range(3):
        step(inputs, labels)
    result["cresnet51 training step"] = 3 * args.batch_size / (time.perf_counter() - start)
    print(
        f"{'cResNet-51 training step (width ' + str(args.width) + ')':<42} "
        f"{result['cresnet51 training step']:9.1f} examples/s"
    )
    store_rate = result["store (entropy decode -> z)"]
    result["store_over_encoder"] = store_rate / result["compressed mode (JPEG -> encoder -> z)"]
    result["store_over_jpeg"] = store_rate / result["rgb (JPEG decode only)"]
    result["store_over_training_step"] = store_rate / result["cresnet51 training step"]
    print(json.dumps({k: v for k, v in result.items() if "_over_" in k}, indent=2))
    if args.json:
        io.write_json(result, args.json)


if __name__ == "__main__":
    main()
