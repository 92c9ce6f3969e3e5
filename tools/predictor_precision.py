"""What the compiled predictor's bfloat16 changes: top-1 of a trained compressed-mode classifier
on its validation split, Keras float32 vs `Predictor` float32 vs `Predictor` bfloat16.

    python tools/predictor_precision.py --model_dir=runs/table2_tiny/cls/bpp0.0983/cresnet51 \
        [--limit=N] [--json=results/bench/predictor_precision.json]

The classifier's folder names its data (a store, or images encoded here with its codec).
Prints the three accuracies, the share of labels on which bfloat16 and float32 agree, and the
largest logit difference.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfcomp import configs, io  # noqa: E402
from tfcomp.codec.files import CodecFiles  # noqa: E402
from tfcomp.data import classification, store  # noqa: E402
from tfcomp.eval.models import load_trained  # noqa: E402
from tfcomp.eval.predict import Predictor  # noqa: E402


def validation_latents(config, files, limit):
    """(z [N, h, w, C] float32, labels [N]) of the validation split, centre crops."""
    if store.is_store(config.dataset):
        ds, _, _ = store.read_split(config.dataset, "val", files, limit=limit)
        pairs = [(z.numpy(), int(y)) for z, y in ds]
    else:
        examples, _, _ = classification.labelled_dataset(config.dataset, "val", limit=limit)
        pairs = []
        for x, y in examples:
            square = classification.resize_square(x, config.resize)
            offset = (config.resize - config.crop_size) // 2
            crop = square[offset : offset + config.crop_size, offset : offset + config.crop_size]
            z = files.codec.encode(tf.cast(crop, tf.uint8)[None])[0][0]
            pairs.append((z.numpy(), int(y)))
    size = min(min(z.shape[0], z.shape[1]) for z, _ in pairs)
    crop = classification.model_crop_size("compressed", config.crop_size)
    size = min(size, crop)
    zs = np.stack([z[:size, :size] for z, _ in pairs]).astype(np.float32)
    return zs, np.array([y for _, y in pairs])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--json")
    args = parser.parse_args()
    trained = load_trained(args.model_dir, "classifier")
    if trained.input_mode != "compressed":
        raise SystemExit(f"{args.model_dir}: a {trained.input_mode} classifier; needs compressed")
    config = configs.load(os.path.join(args.model_dir, "config.json"))
    zs, labels = validation_latents(config, CodecFiles(trained.codec), args.limit)
    keras_logits = np.concatenate(
        [trained.model(zs[i : i + 64])["logits"].numpy() for i in range(0, len(zs), 64)]
    )
    logits = {"keras_float32": keras_logits}
    for precision in ("float32", "bfloat16"):
        predictor = Predictor(trained.model, precision)
        logits[f"predictor_{precision}"] = np.concatenate(
            [predictor(zs[i : i + 64]).numpy() for i in range(0, len(zs), 64)]
        )
    result = {"model_dir": args.model_dir, "images": len(labels)}
    for name, value in logits.items():
        result[f"top1_{name}"] = float((value.argmax(-1) == labels).mean())
    f32, bf16 = logits["predictor_float32"], logits["predictor_bfloat16"]
    result["bfloat16_agrees_with_float32"] = float((f32.argmax(-1) == bf16.argmax(-1)).mean())
    result["max_logit_difference_bfloat16"] = float(np.abs(f32 - bf16).max())
    result["max_logit_difference_predictor_float32_vs_keras"] = float(
        np.abs(f32 - keras_logits).max()
    )
    for key, value in result.items():
        print(f"{key}: {value}")
    if args.json:
        io.write_json(result, args.json)


if __name__ == "__main__":
    main()
