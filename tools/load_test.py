"""Load test of `tfcomp serve` on loopback: requests/s, p50 / p99 latency and batch sizes formed.

    python tools/load_test.py --codec CODEC.keras --images DIR [--clients 1,8,32]
        [--requests 192] [--max_seconds 60] [--width 1.0] [--mutated 1000] [--out FILE.json]

It builds a models folder beside --out with the codec and four classifiers at one width
(weights as initialised: speed does not depend on them, and labels are checked against the
CLI's for the same files, not against the truth):

    cresnet51, cresnet39   compressed: .tfc upload -> entropy decoding -> z -> cResNet
    resnet50_rec           reconstructed: .tfc -> z -> decoder -> ResNet-50 (the decoding
                           alternative, paper Fig. 12)
    resnet50_rgb           JPEG upload -> JPEG decoding + resize 256 / crop 224 -> ResNet-50
                           (the service a user would otherwise build)

then starts `tfcomp serve` in a process of its own and runs, for each network and each number of
concurrent clients (threads, one keep-alive connection each, sending back to back), at most
--requests requests within --max_seconds. Inputs are 224 x 224 centre crops of the images (after
resizing the short side to 256), as `.tfc` and as JPEG (quality 90). During the 8-client run of
cresnet51, --mutated mutated `.tfc` uploads (tests/test_cli.py's mutations) are mixed in: the
report counts 5xx answers and labels of good files different from `tfcomp classify`'s.

The JSON report (--out) holds every level; `--markdown` prints the README's table from it.
"""

import argparse
import concurrent.futures
import http.client
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NETWORKS = {  # name -> (arch, input_mode)
    "cresnet51": ("cresnet51", "compressed"),
    "cresnet39": ("cresnet39", "compressed"),
    "resnet50_rec": ("resnet50", "reconstructed"),
    "resnet50_rgb": ("resnet50", "rgb"),
}
CLASSES = [f"class{i}" for i in range(10)]


def build_models(folder, codec_path, width):
    """The models folder: codec + one folder per network with result.json (see module)."""
    from tfcomp import io as tio
    from tfcomp.codec.bitstream import model_id
    from tfcomp.eval.models import load_codec
    from tfcomp.nets import registry

    os.makedirs(folder, exist_ok=True)
    codec_file = os.path.join(folder, "codec", "codec.keras")
    os.makedirs(os.path.dirname(codec_file), exist_ok=True)
    shutil.copyfile(codec_path, codec_file)
    codec = load_codec(codec_file)
    codec_id = model_id(codec).hex()
    tio.write_json(
        {"models": {"codec": {"file": "codec.keras", "model_id": codec_id}}},
        os.path.join(folder, "codec", "result.json"),
    )
    for name, (arch, mode) in NETWORKS.items():
        net_dir = os.path.join(folder, name)
        if os.path.exists(os.path.join(net_dir, "result.json")):
            continue
        channels = codec.channels if mode == "compressed" else 3
        model = registry.build(arch, len(CLASSES), channels, width)
        model(np.zeros([1, 32, 32, channels], np.float32))  # built: weights exist
        tio.save_keras(model, os.path.join(net_dir, "classifier.keras"))
        card = {"file": "classifier.keras", "arch": arch, "input_mode": mode, "classes": CLASSES}
        if mode != "rgb":
            card.update(codec=os.path.abspath(codec_file), codec_model_id=codec_id)
        tio.write_json({"models": {"classifier": card}}, os.path.join(net_dir, "result.json"))
    return codec_file


def make_inputs(images_dir, codec_file, count, folder):
    """(tfc paths, jpeg bytes): `count` 224 x 224 centre crops as .tfc files and JPEGs."""
    from PIL import Image

    from tfcomp import io as tio
    from tfcomp.codec.files import CodecFiles
    from tfcomp.eval.models import load_codec

    files = CodecFiles(load_codec(codec_file))
    names = []
    for root, _, found in sorted(os.walk(images_dir)):
        names += [
            os.path.join(root, n)
            for n in sorted(found)
            if n.lower().endswith((".jpeg", ".jpg", ".png"))
        ]  # noqa: E501
    step = max(1, len(names) // count)
    os.makedirs(folder, exist_ok=True)
    tfc, jpeg = [], []
    for i, path in enumerate(names[::step][:count]):
        image = Image.fromarray(tio.read_image(path)[0])
        scale = 256 / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)))
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        crop = image.crop((left, top, left + 224, top + 224))
        out = os.path.join(folder, f"{i:04d}.tfc")
        tio.atomic_write(out, files.compress(np.asarray(crop)))
        tfc.append(out)
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=90)
        jpeg.append(buffer.getvalue())
    return tfc, jpeg


def start_service(models, port, log):
    command = [sys.executable, "-m", "tfcomp", "serve", "--models", models, "--port", str(port)]
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service stopped: {open(log).read()[-2000:]}")
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return process
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the service did not start within 300 s")


def request(port, method, path, body=None, connection=None):
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        data = response.read()
    finally:
        if own:
            connection.close()
    return response.status, data


def run_level(port, path, bodies, clients, max_requests, max_seconds):
    """Sends bodies (cycled) from `clients` threads; (latencies, answers, seconds)."""
    counter = iter(range(max_requests))
    start = time.perf_counter()
    results = []

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for k in counter:
                if time.perf_counter() - start > max_seconds:
                    break
                which, body = bodies[k % len(bodies)]
                sent = time.perf_counter()
                status, data = request(port, "POST", path, body, connection)
                results.append((which, time.perf_counter() - sent, status, data))
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return results, time.perf_counter() - start


def level(port, name, endpoint, bodies, clients, args, expected):
    """One measured level: `bodies` (cycled) from `clients` clients; its summary."""
    before = batch_sizes(port, name)
    mutated = sum(which is None for which, _ in bodies)
    results, seconds = run_level(
        port, f"{endpoint}?model={name}", bodies, clients, args.requests + mutated,
        args.max_seconds,
    )  # fmt: skip
    after = batch_sizes(port, name)
    formed = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    summary = summarise(name, clients, results, seconds, formed, expected)
    print(json.dumps(summary), flush=True)
    return summary


def batch_sizes(port, name):
    stats = json.loads(request(port, "GET", "/v1/stats")[1])
    return {int(k): v for k, v in stats.get(name, {}).items()}


def cli_labels(classifier_dir, tfc):
    """`tfcomp classify`'s top-1 class of each file (the same predictor, in this process)."""
    result = subprocess.run(
        [sys.executable, "-m", "tfcomp", "classify", "--classifier", classifier_dir, "-k", "1"]
        + tfc,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [json.loads(line)["top"][0]["class"] for line in result.stdout.splitlines()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", help="trained codec (.keras)")
    parser.add_argument("--images", help="folder of photos (searched recursively)")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=192)
    parser.add_argument("--max_seconds", type=float, default=60)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--inputs", type=int, default=64, help="distinct images")
    parser.add_argument("--mutated", type=int, default=1000)
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--out", default="runs/load_test/load.json")
    parser.add_argument("--markdown", action="store_true", help="print --out's table only")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.load(open(args.out))))
        return
    work = os.path.dirname(os.path.abspath(args.out))
    models = os.path.join(work, "models")
    codec_file = build_models(models, args.codec, args.width)
    tfc, jpeg = make_inputs(args.images, codec_file, args.inputs, os.path.join(work, "inputs"))
    tfc_bodies = [(i, open(p, "rb").read()) for i, p in enumerate(tfc)]
    expected = cli_labels(os.path.join(models, "cresnet51"), tfc)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    service = start_service(models, port, os.path.join(work, "serve.log"))
    levels = []
    try:
        for name in args.networks.split(","):
            endpoint = "/v1/classify_image" if name.endswith("_rgb") else "/v1/classify"
            bodies = [(i, b) for i, b in enumerate(jpeg)] if name.endswith("_rgb") else tfc_bodies
            run_level(port, f"{endpoint}?model={name}", bodies[:4], 1, 4, 60)  # warm-up
            for clients in map(int, args.clients.split(",")):
                levels.append(level(port, name, endpoint, bodies, clients, args, expected))
                if name == "cresnet51" and clients == 8 and args.mutated:
                    # The same level again with mutated uploads mixed in (reported apart).
                    from tests.test_cli import mutations

                    source = tfc_bodies[0][1]
                    mixed = list(bodies)
                    mixed += [(None, m) for _, m in mutations(source, args.mutated, seed=7)]
                    order = np.random.default_rng(0).permutation(len(mixed))
                    mixed = [mixed[k] for k in order]
                    levels.append(level(port, name, endpoint, mixed, clients, args, expected))
        alive = service.poll() is None and request(port, "GET", "/healthz")[0] == 200
    finally:
        service.terminate()
        service.wait(60)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "width": args.width,
        "codec": os.path.abspath(args.codec),
        "images": os.path.abspath(args.images),
        "inputs": len(tfc),
        "service_alive_after": alive,
        "levels": levels,
    }
    from tfcomp import io as tio

    tio.write_json(report, args.out)
    print(markdown(report))


def summarise(name, clients, results, seconds, formed, expected):
    good = [r for r in results if r[0] is not None]
    latencies = np.array([r[1] for r in good]) * 1000
    wrong = 0
    if name.startswith("cresnet51"):
        for which, _, status, data in good:
            wrong += status != 200 or json.loads(data)["top"][0]["class"] != expected[which]
    bad = [r for r in results if r[0] is None]
    return {
        "network": name,
        "clients": clients,
        "requests": len(good),
        "requests_per_s": len(good) / seconds,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "batch_sizes": {str(k): v for k, v in sorted(formed.items()) if v},
        "mean_batch": sum(k * v for k, v in formed.items()) / max(1, sum(formed.values())),
        "good_not_200": sum(r[2] != 200 for r in good),
        "labels_unlike_cli": int(wrong),
        "mutated": len(bad),
        "mutated_5xx": sum(r[2] >= 500 for r in bad),
        "mutated_answered_200": sum(r[2] == 200 for r in bad),
    }


def markdown(report):
    lines = [
        "| network | clients | requests | req/s | p50 ms | p99 ms | mean batch | vs resnet50_rec "
        "| vs resnet50_rgb |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rate = {(lv["network"], lv["clients"]): lv["requests_per_s"] for lv in report["levels"]}
    for lv in report["levels"]:
        if lv["mutated"]:
            continue  # below the table
        ratios = []
        for other in ("resnet50_rec", "resnet50_rgb"):
            base = rate.get((other, lv["clients"]))
            ratios.append(f"{lv['requests_per_s'] / base:.2f}x" if base else "")
        lines.append(
            f"| {lv['network']} | {lv['clients']} | {lv['requests']} | "
            f"{lv['requests_per_s']:.1f} | {lv['p50_ms']:.0f} | {lv['p99_ms']:.0f} | "
            f"{lv['mean_batch']:.1f} | {ratios[0]} | {ratios[1]} |"
        )
    mutated = [lv for lv in report["levels"] if lv["mutated"]]
    for lv in mutated:
        lines.append(
            f"\n{lv['mutated']} mutated uploads mixed into the {lv['clients']}-client "
            f"{lv['network']} run: {lv['mutated_5xx']} answered 5xx, "
            f"{lv['mutated_answered_200']} were valid files (200); good requests not 200: "
            f"{lv['good_not_200']}, labels unlike `tfcomp classify`'s: {lv['labels_unlike_cli']}; "
            f"service alive after: {report['service_alive_after']}."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
