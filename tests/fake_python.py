"""Stands in for the project's Python in tests of the Table 2 driver: each experiment writes the
result files the real one writes, with numbers derived from its arguments, so the driver's
sequencing, skipping, resuming and tabulation run in seconds. tools/table2.py and
tools/claims.py run for real.
Invocations are appended to $FAKE_LOG (with --config); $FAKE_FAIL names a model_dir whose run
fails."""

import json
import os
import subprocess
import sys
import zlib

FIGURE_FILES = ("segmenter.keras", "examples/examples.json")  # what Fig. 5 draws from


def write(path, data):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(data if isinstance(data, str) else json.dumps(data))


def score(text):
    """A number in [0.2, 0.9) fixed by the text (stable across runs)."""
    return 0.2 + (zlib.crc32(text.encode()) % 700) / 1000


def card(kind, flags):
    """The result's model card: the codec's model id (the fake codec file's text), as the real
    trainers record it (`codec_model_id`)."""
    codec = flags.get("codec")
    model_id = open(codec).read() if codec and os.path.exists(codec) else None
    return {kind: {"codec_model_id": model_id}}


def finished_before(model_dir, files):
    """What a real trainer does with a folder holding result.json: nothing when its model
    files are there too, else it fails naming the missing file (tfcomp.train.job)."""
    if not os.path.exists(f"{model_dir}/result.json"):
        return False
    for name in files:
        if not os.path.exists(f"{model_dir}/{name}"):
            sys.exit(f"error: {model_dir}/{name}: file not found")
    return True


def main(argv):
    if argv[0].endswith(("tools/table2.py", "tools/claims.py", "tools/reproduce_table2.py")):
        sys.exit(subprocess.call([sys.executable, *argv]))
    flags = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    target = argv[1] if argv[0] == "-m" else argv[0]
    with open(os.environ["FAKE_LOG"], "a") as f:
        keys = ("config", "mode", "codec", "classifier", "init_classifier", "dataset", "seed")
        wiring = [f"{k}={flags[k]}" for k in keys if k in flags]
        line = [target, flags.get("model_dir", flags.get("output_dir", "")), *wiring]
        f.write(" ".join(line) + "\n")
    if os.environ.get("FAKE_THREADS_LOG"):  # the thread pools the driver gave the step
        with open(os.environ["FAKE_THREADS_LOG"], "a") as f:
            f.write(f"{target} {os.environ.get('TF_NUM_INTRAOP_THREADS')}\n")
    model_dir = flags.get("model_dir", "")
    if os.environ.get("FAKE_FAIL") and model_dir.endswith(os.environ["FAKE_FAIL"]):
        print("simulated failure", file=sys.stderr)
        sys.exit(1)
    if target == "experiments.count_flops":
        names = ["encoder", "decoder", "decoder_320", "resnet50", "resnet71", "cresnet39"]
        names += ["cresnet51", "cresnet72", "resnet50_d", "cresnet39_d", "cresnet51_d"]
        write(flags["json"], [{"name": n, "macs": (i + 1) * 1e9} for i, n in enumerate(names)])
    elif target == "experiments.train_compression":
        if finished_before(model_dir, ["codec.keras"]):
            return
        model_id = os.urandom(8).hex()  # a new codec, a new model id (its card names it)
        write(f"{model_dir}/codec.keras", model_id)
        write(
            f"{model_dir}/result.json", {"metrics": {}, "models": {"codec": {"model_id": model_id}}}
        )
    elif target in ("experiments.train_classifier", "experiments.train_joint"):
        model = "codec.keras" if flags.get("mode") == "codec_only" else "classifier.keras"
        if finished_before(model_dir, [model]):
            return
        s = score(model_dir)
        if flags.get("mode") != "codec_only":
            write(f"{model_dir}/classifier.keras", "classifier")
        write(f"{model_dir}/codec.keras", "codec")
        write(f"{model_dir}/curve.json", [{"epoch": 1, "step": 5, "top5": s, "top1": s / 2}])
        result = {} if flags.get("mode") == "codec_only" else {"top1": s / 2, "top5": s}
        write(f"{model_dir}/result.json", {"metrics": result, "models": card("classifier", flags)})
    elif target == "experiments.train_segmentation":
        if not os.path.exists(flags["init_classifier"]):
            sys.exit(f"error: {flags['init_classifier']}: file not found")
        if finished_before(model_dir, ["segmenter.keras"]):
            return
        write(f"{model_dir}/segmenter.keras", "segmenter")
        write(f"{model_dir}/examples/examples.json", {"images": []})  # Fig. 5's panels
        write(f"{model_dir}/curve.json", [{"step": 5, "miou": score(model_dir) / 3}])
        metrics = {"miou": score(model_dir) / 2}
        write(f"{model_dir}/result.json", {"metrics": metrics, "models": card("segmenter", flags)})
    elif target == "experiments.eval_compression":
        codecs = {}
        for i, path in enumerate(c for c in flags["codecs"].split(",") if c):
            label = os.path.basename(os.path.dirname(path))
            mean = {"bpp_real": 0.1 * (i + 1), "psnr": 20 + i, "ssim": 0.5, "ms_ssim": 0.7}
            codecs[label] = {"mean": mean, "model_id": open(path).read()}
        baselines = {}
        if flags.get("baselines") != "":  # the default sweep: a two-point JPEG curve
            low = {"bpp_real": 0.05, "ssim": 0.4, "ms_ssim": 0.6, "psnr": 20}
            high = {"bpp_real": 1.0, "ssim": 0.9, "ms_ssim": 0.95, "psnr": 30}
            baselines["jpeg"] = [high, low]
        write(f"{flags['output_dir']}/rd.json", {"codecs": codecs, "baselines": baselines})
    elif target == "experiments.encode_dataset":
        write(
            f"{flags['out']}/manifest.json", {"splits": {}, "model_id": open(flags["codec"]).read()}
        )
    elif target == "experiments.eval_segmentation":
        for model_dir in flags["model_dirs"].split(","):  # the real one: panels, else weights
            if not any(os.path.exists(f"{model_dir}/{f}") for f in FIGURE_FILES):
                sys.exit(f"error: {model_dir}: neither segmenter.keras nor examples/")
        write(flags["figure"], "png")
        if "output" in flags:
            write(flags["output"], {})
    elif target.endswith("tools/benchmark_inference.py"):
        row = {"batch": 1, "rgb_net": "decoder+resnet50", "compressed_net": "cresnet51"}
        row.update(rgb_ms=2.0, compressed_ms=1.0)
        write(flags["json"], {"width": 0.25, "cpu_count": 2, "float32": {"rows": [row]}})
    else:
        sys.exit(f"fake python: unexpected command {argv}")


if __name__ == "__main__":
    main(sys.argv[1:])
