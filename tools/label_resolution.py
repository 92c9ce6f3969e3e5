"""What an output stride costs each class of a segmentation set, from its masks alone.

  .venv/bin/python tools/label_resolution.py --dataset=camvid:../shared/datasets/camvid \
      --split=val --strides=8,16 --json=results/analysis/label_resolution_camvid.json

For each stride: the per-class IoU and mIoU of the true masks sampled at each block's centre and
upsampled back (`tfcomp.eval.segmentation.stride_sampled_labels`; DeepLab-v2 predicts at stride
8, and z is 1/8 of the image); and for each class its pixels' share and the median width of its
horizontal runs. A thin class (CamVid's Pole) that loses most of its IoU there explains a
segmenter's low IoU on it better than its training budget. Prints Markdown; writes --json.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tfcomp import io  # noqa: E402
from tfcomp.data import segmentation  # noqa: E402
from tfcomp.eval.segmentation import (  # noqa: E402
    iou_from_confusion,
    run_widths,
    stride_sampled_labels,
)


def label_resolution(masks, num_classes, strides):
    """{'strides': {stride: {'per_class_iou', 'miou'}}, 'pixel_share', 'median_run_width'}
    over `masks` (2-D uint8 label maps, 255 ignored)."""
    matrices = {s: np.zeros((num_classes, num_classes), np.int64) for s in strides}
    pixels = np.zeros(num_classes, np.int64)
    widths = [[] for _ in range(num_classes)]
    for mask in masks:
        valid = mask != segmentation.IGNORE
        pixels += np.bincount(mask[valid], minlength=num_classes)[:num_classes]
        for c in range(num_classes):
            widths[c].append(run_widths(mask, c))
        for s in strides:
            sampled = stride_sampled_labels(mask, s)
            both = valid & (sampled != segmentation.IGNORE)
            pairs = mask[both].astype(np.int64) * num_classes + sampled[both]
            matrices[s] += np.bincount(pairs, minlength=num_classes**2).reshape(
                num_classes, num_classes
            )
    result = {"strides": {}, "pixel_share": (pixels / max(pixels.sum(), 1)).tolist()}
    for s, matrix in matrices.items():
        iou, miou = iou_from_confusion(matrix)
        per_class = [None if np.isnan(v) else float(v) for v in iou]
        result["strides"][str(s)] = {"per_class_iou": per_class, "miou": miou}
    result["median_run_width"] = [
        float(np.median(np.concatenate(w))) if sum(map(len, w)) else None for w in widths
    ]
    return result


def markdown(result, classes):
    lines = ["| | " + " | ".join(classes) + " | mIoU |", "| --- " * (len(classes) + 2) + "|"]
    share = " | ".join(f"{100 * v:.1f}" for v in result["pixel_share"])
    lines.append(f"| pixels % | {share} | |")
    width = " | ".join("" if v is None else f"{v:g}" for v in result["median_run_width"])
    lines.append(f"| median run width, px | {width} | |")
    for s, r in sorted(result["strides"].items(), key=lambda item: int(item[0])):
        ious = " | ".join("" if v is None else f"{100 * v:.1f}" for v in r["per_class_iou"])
        lines.append(f"| IoU % at stride {s} | {ious} | {100 * r['miou']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="camvid:PATH, voc2012_sbd or default")
    parser.add_argument("--split", default="val")
    parser.add_argument("--strides", default="8,16", help="comma-separated output strides")
    parser.add_argument("--tfds_data_dir", default=None)
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args(argv)
    strides = [int(s) for s in args.strides.split(",")]
    examples, count, classes = segmentation.segmentation_dataset(
        args.dataset, args.split, args.tfds_data_dir
    )
    masks = (m.numpy()[..., 0] for _, m in examples)
    result = label_resolution(masks, len(classes), strides)
    result.update(dataset=args.dataset, split=args.split, images=count, classes=list(classes))
    print(markdown(result, classes))
    if args.json:
        io.write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
