"""The `tfcomp` command line (also `python -m tfcomp`).

    tfcomp compress   --model CODEC.keras IMAGE... [-o DIR]    one FILE.tfc per image
    tfcomp decompress [--model CODEC.keras] FILE.tfc... [-o DIR] one FILE.png per file; without
                      --model, the codec whose id the file names, from `tfcomp models`
    tfcomp info       FILE.tfc...                               the header as JSON lines
    tfcomp classify   --classifier DIR FILE.tfc... [-k 5]       top-k classes as JSON lines,
                      from the latent z alone: bytes -> symbols -> z -> cResNet (no decoder)
    tfcomp segment    --segmenter DIR FILE.tfc... -o OUT        class maps (palette PNGs of class
                      indices, the image's size) from z alone, with a cResNet-d segmenter
    tfcomp models     add CODEC.keras... | list                 the local codec folder
    tfcomp serve      --models DIR [--host --port]              the HTTP service (tfcomp[serve])
    tfcomp export-encoder --model CODEC.keras -o ENC.tflite     the phone-side encoder (LiteRT)

classify and segment decode every file's z first, then run one compiled predictor
(`tfcomp.eval.predict`) on batches of equal-sized z.

Bad input (an unreadable image, a truncated or corrupted file, another codec's file, a newer
format, an image too large for the memory budget, `tfcomp.memory`) gets one line on stderr,
`tfcomp COMMAND: error: INPUT: why`, and no partial output file; the other inputs are still
processed and the command exits with status 1 at the end (`--fail-fast`: at the first failure).
So does any other failure while one input is processed, named as unexpected; set
TFCOMP_DEBUG=1 to get its traceback (and TensorFlow's start-up log) instead. TensorFlow's C++
log is off unless TF_CPP_MIN_LOG_LEVEL says otherwise.
"""

import argparse
import contextlib
import json
import os
import sys

import numpy as np

# Before TensorFlow is imported: its C++ log (INFO lines, "failed call to cuInit" on machines
# without a GPU) would otherwise precede the one-line error. An explicit setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EXIT_BAD_INPUT = 1
MAX_MESSAGE = 400  # characters of an error message (TensorFlow's can run to pages)


def _debug():
    return os.environ.get("TFCOMP_DEBUG", "") not in ("", "0")


def _import_tensorflow_quietly():
    """Imports TensorFlow with file descriptor 2 sent to /dev/null meanwhile; absl to ERROR.

    TensorFlow's shared libraries log a few INFO lines while they load, before absl logging is
    initialised, whatever TF_CPP_MIN_LOG_LEVEL says. Python errors of the import still show: the
    exception propagates after stderr is restored. Nothing is silenced with TFCOMP_DEBUG=1; the
    import is not silenced with TF_CPP_MIN_LOG_LEVEL=0 or when TensorFlow is already imported.
    """
    if _debug():
        return
    if "tensorflow" not in sys.modules and os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0":
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)


def _one_line(text):
    """The message on one line, whitespace collapsed, at most MAX_MESSAGE characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class InputError(Exception):
    """A failure while processing one input, phrased as one line that names the input."""


@contextlib.contextmanager
def _for_input(path):
    """Turns any exception raised for input `path` into an InputError naming it.

    Bad input raises ValueError or OSError (FormatError, ImageReadError, FileNotFoundError); any
    other exception is a failure of tfcomp or TensorFlow and says so. TFCOMP_DEBUG=1 re-raises
    it unchanged, with its traceback.
    """
    try:
        yield
    except InputError:
        raise
    except Exception as error:
        if _debug():
            raise
        message = str(error) or type(error).__name__
        if not isinstance(error, (ValueError, OSError)):
            message = (
                f"unexpected {type(error).__name__}: {_one_line(message)} "
                "(run with TFCOMP_DEBUG=1 for a traceback)"
            )
        if not message.startswith(str(path)):
            message = f"{path}: {message}"
        raise InputError(message) from None


def _output_path(source, out_dir, suffix):
    stem = os.path.splitext(os.path.basename(source))[0]
    return os.path.join(out_dir or os.path.dirname(os.path.abspath(source)), stem + suffix)


class _Progress:
    """A one-line progress counter on stderr for more than one file."""

    line_open = False  # a counter is on stderr without its newline yet

    def __init__(self, total, verb):
        self.total, self.verb, self.done = total, verb, 0

    def step(self, name):
        self.done += 1
        if self.total > 1:
            end = "\n" if self.done == self.total else ""
            print(
                f"\r{self.verb} {self.done}/{self.total} {name[-40:]:<40}", end=end, file=sys.stderr
            )
            _Progress.line_open = not end

    @staticmethod
    def end_line():
        """Ends an open counter line, so that an error message gets a line of its own."""
        if _Progress.line_open:
            print(file=sys.stderr)
            _Progress.line_open = False


def _load_files(model_path):
    from tfcomp.codec.files import CodecFiles
    from tfcomp.eval.models import load_codec

    return CodecFiles(load_codec(model_path))


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise FileNotFoundError(f"{path}: {error.strerror}") from None


class BatchFailed(Exception):
    """Some inputs of a batch command failed (each was reported on its own line)."""


def _each(args, inputs, verb, work):
    """Runs `work(path)` for every input; a failing input gets its own stderr line and the others
    go on (`--fail-fast`: the first failure ends the command). Raises BatchFailed at the end if
    any failed."""
    progress = _Progress(len(inputs), verb)
    failed = []
    for path in inputs:
        try:
            with _for_input(path):
                work(path)
        except InputError as error:
            if getattr(args, "fail_fast", False) or len(inputs) == 1:
                raise
            failed.append(path)
            _Progress.end_line()
            print(f"tfcomp {args.command}: error: {_one_line(error)}", file=sys.stderr)
        progress.step(path)
    if failed:
        raise BatchFailed(f"{len(failed)} of {len(inputs)} inputs failed")


def cmd_compress(args):
    from tfcomp import io, memory

    files = _load_files(args.model)

    def compress(path):
        # The size is checked from the image's header, before its pixels are decoded.
        image, mode = io.read_image(path, check_size=lambda h, w: memory.check("encode", h, w))
        if mode != "RGB":
            print(f"note: {path} is mode {mode}; converted to RGB", file=sys.stderr)
        io.atomic_write(_output_path(path, args.output, ".tfc"), files.compress(image))

    _each(args, args.images, "compressing", compress)


def _codec_for(path, model_path, cache):
    """The codec for a `.tfc` file: `model_path` if given, else the one its header's id names
    in the model folder (`tfcomp.models`)."""
    if model_path:
        if model_path not in cache:
            cache[model_path] = _load_files(model_path)
        return cache[model_path]
    from tfcomp import models
    from tfcomp.codec import bitstream

    model_id = bitstream.read_header(_read(path))["model_id"]
    if model_id not in cache:
        cache[model_id] = _load_files(models.codec_path(model_id))
    return cache[model_id]


def cmd_decompress(args):
    from tfcomp import io

    cache = {}
    if args.model:  # a bad --model is one error, not one per file
        cache[args.model] = _load_files(args.model)

    def decompress(path):
        files = _codec_for(path, args.model, cache)
        io.save_png(_output_path(path, args.output, ".png"), files.decompress(_read(path)))

    _each(args, args.files, "decompressing", decompress)


def cmd_info(args):
    from tfcomp.codec import bitstream

    def info(path):
        header = bitstream.read_header(_read(path))
        print(json.dumps({"file": path, **header}))

    _each(args, args.files, "reading", info)


def _load_trained(path, codec_override, kind):
    """A compressed-mode classifier or segmenter folder, with the codec that reads its files."""
    from tfcomp.codec.files import CodecFiles
    from tfcomp.eval.models import load_trained

    trained = load_trained(path, kind, codec_override)
    if trained.input_mode != "compressed":
        raise ValueError(
            f"{path}: this {kind} reads {trained.input_mode} images, not compressed files"
        )
    return trained, CodecFiles(trained.codec)


def _latents(args, files, kind):
    """Decodes every file's z (the failures reported, as `_each` does); yields batches of
    (paths, headers, z [N, h', w', C]) of one z shape, at most `args.batch_size` each, in the
    inputs' order within each shape."""
    from tfcomp import memory

    groups = {}

    def decode(path):
        header, z = files.decode_latent(_read(path))
        memory.check(kind, header["height"], header["width"])
        groups.setdefault(z.shape, []).append((path, header, z))

    try:
        _each(args, args.files, "decoding", decode)
        failure = None
    except BatchFailed as error:
        failure = error
    for group in groups.values():
        for start in range(0, len(group), args.batch_size):
            chunk = group[start : start + args.batch_size]
            yield [c[0] for c in chunk], [c[1] for c in chunk], np.stack([c[2] for c in chunk])
    if failure is not None:
        raise failure


def cmd_classify(args):
    from tfcomp.eval.classification import top_k
    from tfcomp.eval.predict import Predictor

    trained, files = _load_trained(args.classifier, args.model, "classifier")
    predictor = Predictor(trained.model, args.precision)
    # The classifier is fully convolutional up to its global pooling: it reads all of z.
    for paths, _, z in _latents(args, files, "classify"):
        for path, logits in zip(paths, predictor(z).numpy()):
            print(json.dumps({"file": path, "top": top_k(logits, trained.classes, args.top_k)}))


def _mask_png(labels, classes):
    import io

    from PIL import Image

    from tfcomp.plots import label_colours

    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(label_colours(len(classes)).reshape(-1).tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def cmd_segment(args):
    import tensorflow as tf

    from tfcomp.eval.predict import Predictor
    from tfcomp.eval.segmentation import class_fractions, predict_labels
    from tfcomp.io import atomic_write

    trained, files = _load_trained(args.segmenter, args.model, "segmenter")
    predictor = Predictor(trained.model, args.precision)
    one_png = len(args.files) == 1 and args.output.lower().endswith(".png")
    for paths, headers, z in _latents(args, files, "segment"):
        logits = predictor(z)
        for path, header, one in zip(paths, headers, tf.unstack(logits)):
            with _for_input(path):
                labels = predict_labels(one[None], header["height"], header["width"])[0].numpy()
                out = args.output if one_png else _output_path(path, args.output, ".mask.png")
                atomic_write(out, _mask_png(labels, trained.classes))
            share = class_fractions(labels, trained.classes)
            print(json.dumps({"file": path, "mask": out, "class_fractions": share}))


def cmd_models(args):
    from tfcomp import models

    if args.action == "add":
        _each(args, args.paths, "adding", lambda path: print(json.dumps(models.add(path))))
    else:
        for card in models.cards():
            print(json.dumps(card))


def cmd_serve(args):
    try:
        from tfcomp.serve.app import Settings, serve
    except ImportError as error:
        message = f"the service needs its extra: pip install 'tfcomp[serve]' ({error})"
        raise OSError(message) from None
    settings = Settings(
        max_body=args.max_body, max_batch=args.max_batch, max_wait=args.max_wait,
        timeout=args.timeout,
    )  # fmt: skip
    serve(args.models, args.host, args.port, args.precision, settings)


def cmd_export_encoder(args):
    from tfcomp.codec.export import LiteEncoder, compare, export_encoder
    from tfcomp.eval.models import load_codec

    codec = load_codec(args.model)
    size = export_encoder(codec, args.output)
    report = {"model": args.model, "output": args.output, "bytes": size}
    if args.check:
        from tfcomp import io

        images = [io.read_image(path)[0] for path in args.check]
        report.update(compare(codec, LiteEncoder(args.output), images))
    print(json.dumps(report))


def build_parser():
    parser = argparse.ArgumentParser(prog="tfcomp", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, run, help):
        p = sub.add_parser(name, help=help)
        p.set_defaults(run=run)
        return p

    def batch(p):
        p.add_argument(
            "--fail-fast",
            action="store_true",
            help="stop at the first input that fails (default: process every input, report "
            "each failure on its own line, exit 1 at the end if any failed)",
        )

    def predicting(p):
        p.add_argument("--batch_size", type=int, default=32, help="files per network call")
        p.add_argument(
            "--precision",
            choices=("float32", "bfloat16"),
            help="(default: bfloat16 where the CPU computes it natively, else float32)",
        )

    p = command("compress", cmd_compress, "images -> .tfc files")
    p.add_argument("--model", required=True, help="trained codec (.keras)")
    p.add_argument("images", nargs="+", help="image files (any size; RGB, grey, palette, RGBA)")
    p.add_argument("-o", "--output", help="output folder (default: beside each image)")
    batch(p)
    p = command("decompress", cmd_decompress, ".tfc files -> PNG")
    p.add_argument(
        "--model",
        help="the codec that wrote the files (.keras; default: the codec whose id the file "
        "names, from the model folder, see `tfcomp models`)",
    )
    p.add_argument("files", nargs="+")
    p.add_argument("-o", "--output", help="output folder (default: beside each file)")
    batch(p)
    p = command("info", cmd_info, "print .tfc headers as JSON lines")
    p.add_argument("files", nargs="+")
    batch(p)
    p = command("classify", cmd_classify, "classify .tfc files without decoding them")
    p.add_argument("--classifier", required=True, help="folder of a compressed-mode classifier")
    p.add_argument("--model", help="codec (default: the one named in the classifier's folder)")
    p.add_argument("-k", "--top_k", type=int, default=5)
    p.add_argument("files", nargs="+")
    predicting(p)
    batch(p)
    p = command("segment", cmd_segment, "segment .tfc files without decoding them")
    p.add_argument("--segmenter", required=True, help="folder of a compressed-mode segmenter")
    p.add_argument("--model", help="codec (default: the one named in the segmenter's folder)")
    p.add_argument("files", nargs="+")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output PNG of class indices (one file), or a folder for FILE.mask.png",
    )
    predicting(p)
    batch(p)
    p = command("models", cmd_models, "the local codec folder ($TFCOMP_MODELS)")
    p.add_argument("action", choices=("add", "list"))
    p.add_argument("paths", nargs="*", help="codec files to add")
    batch(p)
    p = command("serve", cmd_serve, "serve classify/segment/compress over HTTP (tfcomp[serve])")
    p.add_argument("--models", required=True, help="folder searched for trained models")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max_batch", type=int, default=32, help="examples per network call")
    p.add_argument("--max_wait", type=float, default=0.005, help="seconds a batch waits")
    p.add_argument("--max_body", type=int, default=32 << 20, help="bytes of one request")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--precision", choices=("float32", "bfloat16"))
    p = command("export-encoder", cmd_export_encoder, "the encoder as a LiteRT .tflite model")
    p.add_argument("--model", required=True, help="trained codec (.keras)")
    p.add_argument("-o", "--output", required=True, help="output .tflite file")
    p.add_argument(
        "--check", nargs="*", default=(),
        help="images whose LiteRT symbols are compared with TensorFlow's (needs tfcomp[litert])",
    )  # fmt: skip
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        _import_tensorflow_quietly()
        args.run(args)
    except Exception as error:
        if _debug():
            raise
        if isinstance(error, (InputError, ValueError, OSError, BatchFailed)):
            message = _one_line(error)
        else:  # e.g. a model file Keras cannot load
            message = (
                f"unexpected {type(error).__name__}: {_one_line(error)} "
                "(run with TFCOMP_DEBUG=1 for a traceback)"
            )
        _Progress.end_line()
        print(f"tfcomp {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
