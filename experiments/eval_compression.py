"""Rate-distortion of trained codecs (real file sizes) against JPEG, JPEG 2000 and WebP (Fig. 8, 9).

  python -m experiments.eval_compression --config=tiny --codecs=runs/codec/codec.keras
  python -m experiments.eval_compression --images=../shared/datasets/kodak \
      --codecs=runs/imagenette_c8/codec.keras --output_dir=runs/rd_kodak

Images come from --images=DIR or the evaluation config's source (`--config`: the paper's 1,000
ILSVRC2012 validation images, small: Kodak, tiny: the embedded held-out photos; or
--rd_dataset, --rd_split, --rd_limit), or with --domain its second set, the codecs' own kind
of data (small: 100 Imagenette validation images, ILSVRC2012 data like the paper's). Writes
OUTPUT_DIR/rd.json (per image and mean for each codec, one row per baseline setting), rd.png
(PSNR / SSIM / MS-SSIM against bpp) and latents_<codec>.png (first image: the reconstruction
beside its 4 highest-entropy latent channels).
"""

import json
import os

import keras
from absl import app, flags

from experiments import common
from flags import rate_distortion as _rate_distortion_flags  # noqa: F401  (defines the flags)
from tfcomp import io, plots
from tfcomp.codec.files import CodecFiles
from tfcomp.data import sources
from tfcomp.eval import compression
from tfcomp.eval.models import load_codec

FLAGS = flags.FLAGS


def codec_label(path):
    return os.path.basename(os.path.dirname(os.path.abspath(path))) or path


def main(argv):
    del argv
    config = common.config_from_flags("eval")
    if FLAGS.images:
        dataset, split, limit = f"folder:{FLAGS.images}", "test", None
    elif FLAGS.domain:
        if not config.domain_dataset:
            raise ValueError(f"--domain: the {FLAGS.config!r} config names no domain_dataset")
        dataset, split, limit = config.domain_dataset, config.domain_split, config.domain_limit
    else:
        dataset, split, limit = config.rd_dataset, config.rd_split, config.rd_limit
    images = sources.load_images(dataset, split, limit, config.tfds_data_dir, config.manual_dir)
    result = {
        "dataset": dataset,
        "split": split,
        **compression.image_set(images),
        "codecs": {},
        "baselines": {},
    }
    for path in FLAGS.codecs:
        codec = load_codec(path)
        print(f"codec {path}")
        evaluation = compression.evaluate_codec(codec, images, keras.utils.Progbar(len(images)))
        result["codecs"][codec_label(path)] = {"path": path, **evaluation}
        files = CodecFiles(codec)
        name, image = images[0]
        data = files.compress(image)
        _, symbols = files.decode_symbols(data)
        plots.latent_channels(
            image,
            files.decompress(data),
            symbols,
            codec.num_centers,
            os.path.join(FLAGS.output_dir, f"latents_{codec_label(path)}.png"),
            title=f"{name}, {evaluation['images'][name]['bpp_real']:.3f} bpp",
        )
    for name in config.baselines:
        print(f"baseline {name}")
        result["baselines"][name] = compression.evaluate_baseline(
            name, images, keras.utils.Progbar(len(images))
        )
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    plots.rate_distortion(
        result["baselines"],
        {label: r["mean"] for label, r in result["codecs"].items()},
        os.path.join(FLAGS.output_dir, "rd.png"),
        title=f"{dataset} ({len(images)} images)",
    )
    # rd.json last: the Table 2 driver takes it as the sign that this step is complete.
    io.write_json(result, os.path.join(FLAGS.output_dir, "rd.json"))
    print(json.dumps({k: v["mean"] for k, v in result["codecs"].items()}, indent=2))
    print(f"wrote {FLAGS.output_dir}/rd.json, rd.png")


if __name__ == "__main__":
    app.run(common.exit_cleanly(main))
