"""A codec's learning curve from its saved checkpoints: bpp (real files), PSNR, SSIM, MS-SSIM.

  .venv/bin/python tools/codec_curve.py RUN/codec_bpp0.0983 --config=small
  .venv/bin/python tools/codec_curve.py RUN/codec_bpp0.0983 --config=small --watch

For a codec trained without `curve_every_steps`, or one training now under an older version:
each checkpoint in MODEL_DIR/checkpoints that MODEL_DIR/curve.json lacks is restored, its
tables fitted (on the fixed training crops of the trainer's own curve), and the curve images
(the config's `curve_dataset`, or --images=DIR) compressed to real files; the means go into
curve.json, as the trainer's own curve does. The config is the folder's config.json when it
finished, else --config (a preset, or a config.json) with --operating_point. A training run
keeps its last 3 checkpoints only: --watch measures them as they come, until the run's
result.json appears.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfcomp import configs  # noqa: E402


def run_config(args):
    recorded = os.path.join(args.model_dir, "config.json")
    if os.path.isfile(recorded):
        return configs.load(recorded)
    return configs.resolve(
        "codec", args.config, args.data_dir, operating_point=args.operating_point
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="the codec's folder (holding checkpoints/)")
    parser.add_argument("--config", default="paper", help="preset or config.json (unfinished)")
    parser.add_argument("--operating_point", default=None, help="with a preset: bpp0.0983, ...")
    parser.add_argument("--data_dir", default=None, help="the small preset's data folder")
    parser.add_argument("--images", default=None, help="a folder of images instead of the config's")
    parser.add_argument("--every", type=int, default=None, help="only steps that are multiples")
    parser.add_argument("--watch", action="store_true", help="poll until the run finishes")
    parser.add_argument("--poll_seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(args.model_dir, "checkpoints")):
        print(f"{args.model_dir} has no checkpoints/ folder: not a codec run", file=sys.stderr)
        return 2
    from tfcomp.train import compression

    config = run_config(args)
    inputs = compression.curve_inputs(config, args.images)
    while True:
        finished = os.path.isfile(os.path.join(args.model_dir, "result.json"))
        compression.checkpoint_curve(config, args.model_dir, inputs, args.every)
        if not args.watch or finished:
            return 0
        time.sleep(args.poll_seconds)


if __name__ == "__main__":
    sys.exit(main())
