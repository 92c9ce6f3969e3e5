"""The paper's use case as a service: upload bitstreams, get labels and masks, no decoding.

    tfcomp serve --models DIR [--host 127.0.0.1 --port 8000]

    POST /v1/classify        one .tfc body, or multipart with many   -> top-k JSON
    POST /v1/segment         one .tfc body -> palette PNG of class indices (?format=json: the
                             class fractions)
    POST /v1/compress        an image -> .tfc (?model_id=ID or ?operating_point=bpp0.0983)
    POST /v1/decompress      a .tfc -> PNG
    POST /v1/classify_image  an image file (JPEG, PNG) -> top-k JSON from an RGB classifier:
                             what a user would otherwise run (decode + ResNet)
    GET  /v1/models          codecs (ids, operating points) and networks (classes)
    GET  /v1/stats           batch sizes formed so far, per network
    GET  /healthz

Each upload is routed by the model id in its header to the codec that made it and to the
networks trained on that codec's output (`?model=NAME` picks one of several). Entropy decoding
runs per request (cheap: ~70 M symbols/s), then z (or its decoded image, for a network trained
on reconstructions) joins a micro-batch of concurrent requests of the same shape, run through
the network's compiled predictor (`tfcomp.eval.predict`: frozen, batch norm folded, bfloat16
where the CPU has it).

Limits and errors: bodies over `max_body` bytes get 413 before they are read whole; a header
claiming more pixels than the memory budget allows gets 413 before any decoding; every bad
upload gets a 4xx JSON `{"error": "one line"}` (400 malformed or corrupted, 404 unknown model
id, 415 not a .tfc / not an image, 413 too large), never a 5xx; a request over `timeout`
seconds gets 504. In a multipart request each file is answered on its own, so a bad file never
fails its neighbours.
"""

import asyncio
import dataclasses
import io as python_io

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image

from tfcomp import io, memory
from tfcomp.codec import bitstream
from tfcomp.eval.classification import top_k
from tfcomp.eval.segmentation import class_fractions, predict_labels
from tfcomp.serve import models as served_models
from tfcomp.serve.batching import MicroBatcher


@dataclasses.dataclass
class Settings:
    max_body: int = 32 << 20  # bytes of one request body
    max_batch: int = 32  # examples per compiled call
    max_wait: float = 0.005  # seconds a batch waits for more requests
    timeout: float = 30.0  # seconds per request
    top_k: int = 5


class BadUpload(Exception):
    """An upload the service refuses; `status` is its 4xx code."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _one_line(text):
    return " ".join(str(text).split())[:400]


def create_app(served, settings=None):
    settings = settings or Settings()
    app = FastAPI(title="tfcomp", description=__doc__.split("\n\n")[0])
    batchers = {}

    def batcher(network):
        key = id(network)
        if key not in batchers:
            batchers[key] = (
                network,
                MicroBatcher(network.predict, settings.max_batch, settings.max_wait),
            )
        return batchers[key][1]

    async def body(request):
        """The request body, refused (413) past max_body without reading all of it."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body:
            raise BadUpload(
                413, f"body of {declared} bytes exceeds the limit of {settings.max_body}"
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_body:
                raise BadUpload(413, f"body exceeds the limit of {settings.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def uploads(request):
        """[(name, bytes)]: the files of a multipart request, or the body as one file."""
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            data = await body(request)
            from starlette.datastructures import Headers
            from starlette.formparsers import MultiPartParser

            async def stream():
                yield data

            parser = MultiPartParser(Headers(raw=request.headers.raw), stream())
            form = await parser.parse()
            files = [(f.filename or key, await f.read()) for key, f in form.multi_items()
                     if hasattr(f, "read")]  # fmt: skip
            if not files:
                raise BadUpload(400, "multipart request without files")
            return files
        return [("body", await body(request))]

    def decode(name, data, operation):
        """(header, z) of an upload for `operation` (a `tfcomp.memory` cost), or BadUpload
        naming what is wrong with it."""
        try:
            header = bitstream.read_header(data)
        except bitstream.FormatError as error:
            status = 415 if "not a tfcomp file" in str(error) else 400
            if "exceeds the limit" in str(error):
                status = 413
            raise BadUpload(status, f"{name}: {error}") from None
        files = served.codecs.get(header["model_id"])
        if files is None:
            raise BadUpload(404, f"{name}: no codec with model id {header['model_id']} is served")
        try:
            memory.check(operation, header["height"], header["width"])  # before decoding
            header, z = files.decode_latent(data)
        except memory.MemoryBudgetError as error:
            raise BadUpload(413, f"{name}: {error}") from None
        except (bitstream.FormatError, ValueError) as error:
            raise BadUpload(400, f"{name}: {error}") from None
        return header, z

    def pick(kind, model_id, name, label):
        networks = served.networks(kind, model_id, name)
        if not networks:
            which = f" named {name!r}" if name else ""
            raise BadUpload(404, f"{label}: no {kind}{which} is served for codec {model_id}")
        return networks[0]

    async def classify_one(name, data, model, k):
        loop = asyncio.get_running_loop()
        header, z = await loop.run_in_executor(None, decode, name, data, "classify")
        network = pick("classifier", header["model_id"], model, name)
        x = await loop.run_in_executor(None, lambda: network.inputs(z=z))
        logits = await asyncio.wait_for(batcher(network).submit(x), settings.timeout)
        return {"file": name, "model": network.name, "top": top_k(logits, network.classes, k)}

    def error_json(error):
        return {"error": _one_line(error)}

    @app.exception_handler(BadUpload)
    async def bad_upload(request, error):
        return JSONResponse(error_json(error), status_code=error.status)

    @app.exception_handler(asyncio.TimeoutError)
    async def timed_out(request, error):
        return JSONResponse({"error": f"no answer within {settings.timeout} s"}, status_code=504)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "codecs": len(served.codecs)}

    @app.get("/v1/models")
    async def list_models():
        return served_models.describe(served)

    @app.get("/v1/stats")
    async def stats():
        return {
            network.name: {str(size): count for size, count in sorted(b.batch_sizes.items())}
            for network, b in batchers.values()
        }

    @app.post("/v1/classify")
    async def classify(request: Request, k: int = settings.top_k, model: str | None = None):
        files = await uploads(request)
        if len(files) == 1 and files[0][0] == "body":
            return await classify_one(*files[0], model, k)
        results = await asyncio.gather(
            *(classify_one(name, data, model, k) for name, data in files), return_exceptions=True
        )
        answers = []
        for (name, _), result in zip(files, results):
            if isinstance(result, BadUpload):
                answers.append({"file": name, "status": result.status, **error_json(result)})
            elif isinstance(result, asyncio.TimeoutError):
                answers.append({"file": name, "status": 504, "error": "timed out"})
            elif isinstance(result, Exception):
                raise result
            else:
                answers.append({"status": 200, **result})
        return {"results": answers}

    @app.post("/v1/segment")
    async def segment(request: Request, format: str = "png", model: str | None = None):
        (name, data), loop = (await uploads(request))[0], asyncio.get_running_loop()
        header, z = await loop.run_in_executor(None, decode, name, data, "segment")
        network = pick("segmenter", header["model_id"], model, name)
        x = await loop.run_in_executor(None, lambda: network.inputs(z=z))
        logits = await asyncio.wait_for(batcher(network).submit(x), settings.timeout)
        labels = predict_labels(logits[None], header["height"], header["width"])[0].numpy()
        if format == "json":
            return {"file": name, "model": network.name,
                    "class_fractions": class_fractions(labels, network.classes)}  # fmt: skip
        image = Image.fromarray(labels.astype(np.uint8), mode="P")
        from tfcomp.plots import label_colours

        image.putpalette(label_colours(len(network.classes)).reshape(-1).tolist())
        buffer = python_io.BytesIO()
        image.save(buffer, format="PNG")
        return Response(buffer.getvalue(), media_type="image/png")

    @app.post("/v1/decompress")
    async def decompress(request: Request):
        (name, data), loop = (await uploads(request))[0], asyncio.get_running_loop()
        header, z = await loop.run_in_executor(None, decode, name, data, "decode")
        files = served.codecs[header["model_id"]]
        image = await loop.run_in_executor(None, files.reconstruct, z, header)
        buffer = python_io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        return Response(buffer.getvalue(), media_type="image/png")

    def codec_for(model_id, operating_point):
        if model_id:
            if model_id not in served.codecs:
                raise BadUpload(404, f"no codec with model id {model_id} is served")
            return served.codecs[model_id]
        for mid, info in served.codec_info.items():
            if operating_point is None or info.get("operating_point") == operating_point:
                return served.codecs[mid]
        raise BadUpload(404, f"no codec for operating point {operating_point!r} is served")

    def read_upload(name, data):
        try:
            return served_models.read_upload_image(data, name)
        except io.ImageReadError as error:
            status = 413 if "memory budget" in str(error) else 415
            raise BadUpload(status, str(error)) from None

    @app.post("/v1/compress")
    async def compress(
        request: Request, model_id: str | None = None, operating_point: str | None = None
    ):
        (name, data), loop = (await uploads(request))[0], asyncio.get_running_loop()
        files = codec_for(model_id, operating_point)
        image = await loop.run_in_executor(None, read_upload, name, data)
        try:
            bitstream.check_image_size(image.shape[0], image.shape[1])
        except bitstream.FormatError as error:
            raise BadUpload(413, f"{name}: {error}") from None
        tfc = await loop.run_in_executor(None, files.compress, image)
        return Response(tfc, media_type="application/octet-stream")

    @app.post("/v1/classify_image")
    async def classify_image(request: Request, k: int = settings.top_k, model: str | None = None):
        (name, data), loop = (await uploads(request))[0], asyncio.get_running_loop()
        network = pick("classifier", None, model, name)
        image = await loop.run_in_executor(None, read_upload, name, data)
        x = await loop.run_in_executor(None, lambda: network.inputs(image=image))
        logits = await asyncio.wait_for(batcher(network).submit(x), settings.timeout)
        return {"file": name, "model": network.name, "top": top_k(logits, network.classes, k)}

    return app


def serve(models_dir, host="127.0.0.1", port=8000, precision=None, settings=None):
    """Loads every model below `models_dir` and serves them until interrupted."""
    import uvicorn

    served = served_models.load_served(models_dir, precision)
    print(
        f"serving {len(served.codecs)} codec(s), "
        f"{sum(map(len, served.classifiers.values()))} classifier(s), "
        f"{sum(map(len, served.segmenters.values()))} segmenter(s) on http://{host}:{port}",
        flush=True,
    )
    uvicorn.run(create_app(served, settings), host=host, port=port, log_level="warning")
