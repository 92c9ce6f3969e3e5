"""The service, started as a real process on a loopback port, answering real HTTP requests;
the exported LiteRT encoder; codecs found by id in the model folder."""

import concurrent.futures
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid

import keras
import numpy as np
import pytest
from PIL import Image

from tests.helpers import codec_file, train
from tests.test_cli import mutations
from tests.test_segmentation import write_camvid
from tests.test_train_classification import SMALL, make_folder
from tfcomp import cli
from tfcomp.codec import bitstream
from tfcomp.codec.files import CodecFiles
from tfcomp.eval.models import load_codec


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A models folder: a codec, a compressed-mode classifier and segmenter trained on it."""
    root = tmp_path_factory.mktemp("served")
    data = make_folder(tmp_path_factory.mktemp("classes"))
    codec_path = codec_file(root / "codec", data)
    train(
        "classifier", root / "cls", arch="cresnet_tiny", input_mode="compressed",
        codec=codec_path, dataset=data, epochs=3, learning_rate=0.05, **SMALL,
    )  # fmt: skip
    camvid = write_camvid(tmp_path_factory.mktemp("camvid"))
    train(
        "segmenter", root / "seg", arch="cresnet_tiny_d", input_mode="compressed",
        codec=codec_path, dataset=camvid, train_steps=10, batch_size=4, width=0.25,
        crop_size=32, val_limit=2, curve_every_steps=10,
    )  # fmt: skip
    files = CodecFiles(load_codec(codec_path))
    images = []
    folder = data[len("folder:") :]
    for c in range(3):
        images.append(np.asarray(Image.open(f"{folder}/val/class{c}/0.png").convert("RGB")))
    return {"root": root, "codec": codec_path, "files": files, "images": images}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        kind = response.getheader("content-type", "")
        return response.status, json.loads(data) if kind.startswith("application/json") else data

    def post(self, path, body, **headers):
        return self.request("POST", path, body, headers)

    def multipart(self, path, files):
        boundary = uuid.uuid4().hex
        parts = []
        for name, data in files:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                + data
                + b"\r\n"
            )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.post(
            path, body, **{"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )


@pytest.fixture(scope="module")
def service(models, tmp_path_factory):
    """`tfcomp serve` in a process of its own; yields a Client, stops the process after."""
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "serve.log"
    command = [sys.executable, "-m", "tfcomp", "serve", "--models", str(models["root"])]
    command += ["--port", str(port), "--max_body", str(1 << 20), "--max_wait", "0.02"]
    env = {**os.environ, "TFCOMP_MEMORY_BUDGET": "2G"}
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    client = Client(port)
    deadline = time.time() + 180
    while True:
        try:
            if client.request("GET", "/healthz")[0] == 200:
                break
        except OSError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.time() < deadline, log.read_text()
        time.sleep(0.5)
    yield client
    process.terminate()
    process.wait(30)


def cli_top(models, path, capsys):
    assert cli.main(["classify", "--classifier", str(models["root"] / "cls"), str(path)]) == 0
    return json.loads(capsys.readouterr().out)["top"]


def test_the_service_lists_its_models_and_classifies_like_the_cli(
    models, service, tmp_path, capsys
):
    status, listing = service.request("GET", "/v1/models")
    model_id = models["files"].model_id.hex()
    assert status == 200 and [c["model_id"] for c in listing["codecs"]] == [model_id]
    assert listing["codecs"][0]["operating_point"] == "bpp0.0983"
    assert listing["codecs"][0]["paper_bpp"] == 0.0983  # the tiny codec's default point
    kinds = sorted((n["kind"], n["name"]) for n in listing["networks"])
    assert kinds == [("classifier", "cls"), ("segmenter", "seg")]
    for i, image in enumerate(models["images"]):
        data = models["files"].compress(image)
        (tmp_path / f"{i}.tfc").write_bytes(data)
        status, answer = service.post("/v1/classify", data)
        assert status == 200, answer
        expected = cli_top(models, tmp_path / f"{i}.tfc", capsys)
        assert [t["class"] for t in answer["top"]] == [t["class"] for t in expected]
        got = [t["probability"] for t in answer["top"]]
        np.testing.assert_allclose(got, [t["probability"] for t in expected], atol=1e-6)


def test_segment_compress_and_decompress_endpoints(models, service):
    image = models["images"][0][:37, :45]
    status, tfc = service.post(f"/v1/compress?model_id={models['files'].model_id.hex()}",
                               _png(image))  # fmt: skip
    assert status == 200 and tfc == models["files"].compress(image)
    status, png = service.post("/v1/segment", tfc)
    assert status == 200
    with Image.open(io.BytesIO(png)) as mask:
        assert mask.mode == "P" and mask.size == (45, 37)
    status, share = service.post("/v1/segment?format=json", tfc)
    assert status == 200 and sum(share["class_fractions"].values()) == pytest.approx(1.0, abs=1e-3)
    status, png = service.post("/v1/decompress", tfc)
    with Image.open(io.BytesIO(png)) as decoded:
        np.testing.assert_array_equal(np.asarray(decoded), models["files"].decompress(tfc))


def _png(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_uploads_get_one_line_4xx_and_never_fail_their_neighbours(models, service):
    good = models["files"].compress(models["images"][1])
    other = CodecFiles(_other_codec()).compress(models["images"][1])
    huge = bytearray(good)
    huge[8:16] = (20000).to_bytes(4, "big") * 2  # 20000^2 pixels: over a 2 GiB budget
    from tests.test_cli import with_crc

    cases = {
        "truncated": (good[:-4], 400),
        "not a tfc": (b"GIF89a not a bitstream at all" * 3, 415),
        "foreign codec": (other, 404),
        "memory budget": (with_crc(bytes(huge)), 413),
        "body limit": (b"TFC" * 400_000, 413),
    }
    for what, (data, code) in cases.items():
        status, answer = service.post("/v1/classify", data)
        assert status == code, (what, answer)
        assert set(answer) == {"error"} and "\n" not in answer["error"], answer
    status, answer = service.multipart(
        "/v1/classify", [("a.tfc", good), ("b.tfc", good[:-4]), ("c.tfc", other)]
    )
    assert status == 200
    assert [r["status"] for r in answer["results"]] == [200, 400, 404]
    assert answer["results"][0]["top"][0]["class"]
    assert "b.tfc" in answer["results"][1]["error"]


def _other_codec():
    from tfcomp.codec import Codec
    from tfcomp.codec.files import fit_entropy_model

    keras.utils.set_random_seed(9)
    codec = Codec(channels=8)
    fit_entropy_model(codec, [np.zeros([1, 16, 16, 3], np.uint8)])
    return codec


def test_concurrent_clients_are_batched_and_mutated_uploads_never_give_5xx(models, service):
    files = models["files"]
    good = [files.compress(image) for image in models["images"]]
    expected = {}
    for i, data in enumerate(good):
        expected[i] = service.post("/v1/classify", data)[1]["top"][0]["class"]
    bodies = [(i % 3, good[i % 3]) for i in range(48)]
    bodies += [(None, mutated) for _, mutated in mutations(good[0], 200, seed=4)]
    order = np.random.default_rng(0).permutation(len(bodies))

    def send(k):
        which, data = bodies[k]
        return which, data, *service.post("/v1/classify", data)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, order))
    for which, data, status, answer in answers:
        assert status < 500, answer
        if which is not None:
            assert status == 200 and answer["top"][0]["class"] == expected[which]
        elif status != 200:
            assert set(answer) == {"error"} and "\n" not in answer["error"]
        else:  # a mutation that is exactly a valid file (e.g. a cropped size)
            files.decode_symbols(data)
    status, stats = service.request("GET", "/v1/stats")
    sizes = {int(size): count for size, count in stats["cls"].items()}
    assert max(sizes) > 1, sizes  # concurrent requests shared compiled calls


def test_the_exported_litert_encoder_matches_tensorflow_and_its_files_are_served(
    models, service, tmp_path
):
    from tfcomp.codec.export import LiteEncoder, compare
    from tfcomp.data.sources import image_dataset

    path = tmp_path / "encoder.tflite"
    assert cli.main(["export-encoder", "--model", models["codec"], "-o", str(path)]) == 0
    files = models["files"]
    lite = LiteEncoder(str(path))
    photos = [np.asarray(image)[:96, :120] for image in image_dataset("default", "test")][:4]
    report = compare(files.codec, lite, photos + models["images"])
    print(report)
    assert report["symbols"] > 5000 and report["mismatches"] <= report["symbols"] // 1000
    # A file written from LiteRT's symbols (as a phone would) is read by the service.
    symbols = lite.symbols(models["images"][2])
    height, width = models["images"][2].shape[:2]
    data = bitstream.pack(
        symbols, height, width, files.codec.num_centers, files.probabilities, files.model_id
    )
    status, answer = service.post("/v1/classify", data)
    tf_answer = service.post("/v1/classify", files.compress(models["images"][2]))[1]
    assert status == 200 and answer["top"][0]["class"] == tf_answer["top"][0]["class"]


def test_decompress_finds_the_codec_by_the_id_in_the_file(models, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TFCOMP_MODELS", str(tmp_path / "models"))
    data = models["files"].compress(models["images"][0])
    (tmp_path / "a.tfc").write_bytes(data)
    assert cli.main(["decompress", str(tmp_path / "a.tfc")]) == 1
    err = capsys.readouterr().err
    assert models["files"].model_id.hex() in err and "tfcomp models add" in err
    assert cli.main(["models", "add", models["codec"]]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["model_id"] == models["files"].model_id.hex()
    assert (tmp_path / "models" / f"{card['model_id']}.keras").is_file()
    assert cli.main(["models", "list"]) == 0
    assert json.loads(capsys.readouterr().out)["model_id"] == card["model_id"]
    assert cli.main(["decompress", str(tmp_path / "a.tfc")]) == 0
    with Image.open(tmp_path / "a.png") as decoded:
        np.testing.assert_array_equal(np.asarray(decoded), models["files"].decompress(data))
    # Not a codec: refused before anything enters the folder.
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    assert cli.main(["models", "add", str(tmp_path / "junk.keras")]) == 1
    assert "not a .keras archive" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        f"{card['model_id']}.json", f"{card['model_id']}.keras"
    ]  # fmt: skip
