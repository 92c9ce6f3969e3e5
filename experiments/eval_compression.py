"""Rate-distortion of trained codecs (real file sizes) against JPEG and JPEG 2000 (Fig. 8, 9).

  python -m experiments.eval_compression --codecs=runs/reproduce/codec/codec.keras
  python -m experiments.eval_compression --images=../shared/datasets/kodak \
      --codecs=runs/imagenette_c8/codec.keras --baselines=jpeg,jpeg2000 --output_dir=runs/rd_kodak

Images come from --images=DIR or any --dataset source (default, folder:PATH, a TFDS name with
--split and --limit). Writes OUTPUT_DIR/rd.json (per image and mean for each codec, one row per
baseline setting), rd.png (PSNR / SSIM / MS-SSIM against bpp) and latents_<codec>.png (first
image: the reconstruction beside its 4 highest-entropy latent channels).
"""

import json
import os

import keras
from absl import app, flags

from experiments import common
from flags import common as _common_flags  # noqa: F401  (defines the flags)
from flags import rate_distortion as _rate_distortion_flags  # noqa: F401
from tfcomp import io, plots
from tfcomp.codec.files import CodecFiles
from tfcomp.data import sources
from tfcomp.eval import compression

FLAGS = flags.FLAGS


def codec_label(path):
    return os.path.basename(os.path.dirname(os.path.abspath(path))) or path


def main(argv):
    del argv
    dataset = f"folder:{FLAGS.images}" if FLAGS.images else FLAGS.dataset
    images = sources.load_images(
        dataset, FLAGS.split, FLAGS.limit, FLAGS.tfds_data_dir, FLAGS.manual_dir
    )
    result = {"dataset": dataset, "split": FLAGS.split, "codecs": {}, "baselines": {}}
    for path in FLAGS.codecs:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"codec model {path!r} does not exist")
        codec = keras.models.load_model(path)
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
    for name in FLAGS.baselines:
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
