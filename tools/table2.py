"""Table 2 and the paper's figures from a run folder of tools/reproduce_table2.sh.

  .venv/bin/python tools/table2.py --run_dir=runs/table2_tiny --scale=tiny

Writes RUN_DIR/table2.md and table2.csv (measured numbers beside the paper's Table 2),
table2_joint.csv (joint training and its control: accuracy, mIoU, the codec's rate and quality) and
RUN_DIR/figures/: fig3 (classification validation curves), fig4 (segmentation validation
curves), fig6 (accuracy / mIoU vs GFLOPs with and without the decoder), fig7 (joint training
movement), fig8 (rate-distortion), fig9 (latent channels), fig11 (codec metrics before/after
joint training), fig12 (runtime), codec_curves (each codec's quality over its training steps
beside JPEG 2000 at the same rate). Rows or figures whose runs are missing are left out and named.
"""

import argparse
import csv
import glob
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfcomp import io, plots  # noqa: E402
from tfcomp.eval import stats  # noqa: E402
from tfcomp.nets import registry  # noqa: E402

# Paper, Table 2: (bpp, network) -> (top-5 %, top-1 %, mIoU %). "original" = uncompressed RGB.
PAPER = {
    ("original", "resnet50"): (89.96, 71.06, 65.75),
    ("bpp0.635", "resnet50"): (88.34, 68.26, 62.97),
    ("bpp0.635", "cresnet51"): (87.85, 67.68, 62.86),
    ("bpp0.635", "cresnet39"): (87.47, 67.17, 61.85),
    ("bpp0.330", "resnet50"): (86.25, 65.18, 60.75),
    ("bpp0.330", "cresnet51"): (85.87, 64.78, 61.12),
    ("bpp0.330", "cresnet39"): (85.46, 64.14, 60.78),
    ("bpp0.0983", "resnet50"): (78.52, 55.30, 52.97),
    ("bpp0.0983", "cresnet51"): (78.20, 55.18, 54.62),
    ("bpp0.0983", "cresnet39"): (77.65, 54.31, 53.51),
    ("bpp0.0983", "resnet71"): (79.28, 56.23, 54.55),
    ("bpp0.0983", "cresnet72"): (79.02, 55.82, 55.78),
}
POINT_ORDER = ("bpp0.635", "bpp0.330", "bpp0.0983")
NETS = ("resnet50", "cresnet51", "cresnet39", "resnet71", "cresnet72")
NAMES = {
    "resnet50": "ResNet-50",
    "cresnet51": "cResNet-51",
    "cresnet39": "cResNet-39",
    "resnet71": "ResNet-71",
    "cresnet72": "cResNet-72",
}


def load(path):
    return io.read_json(path) if os.path.isfile(path) else None


SEED = "@SEED@"  # where a folder pattern has "" (seed 0) or ".seedK" (tools/reproduce_table2.py)


def seed_items(pattern, seeds=None):
    """[(seed, path)] of one row's existing paths over its seeds, in seed order: `pattern` with
    SEED replaced by "" (seed 0) and by ".seedK" for every K found (of `seeds` only, when
    given)."""
    prefix, suffix = pattern.split(SEED)
    found = [(0, prefix + suffix)]
    for path in glob.glob(glob.escape(prefix) + ".seed*" + glob.escape(suffix)):
        k = path[len(prefix) + len(".seed") : len(path) - len(suffix)]
        if k.isdigit():
            found.append((int(k), path))
    found = [(k, p) for k, p in found if seeds is None or k in seeds]
    return [(k, path) for k, path in sorted(found) if os.path.exists(path)]


def seed_paths(pattern, seeds=None):
    """The paths of `seed_items`."""
    return [path for _, path in seed_items(pattern, seeds)]


def over_seeds(pattern, names, seeds=None):
    """{metric: stats.Estimate over seeds (`seeds` only, when given), in percent} of the
    folders of `pattern`."""
    paths = seed_paths(pattern + "/result.json", seeds)
    runs = [load(path).get("metrics", {}) for path in paths]
    return {name: stats.estimate([pct(m.get(name)) for m in runs]) for name in names}


def codec_of(result):
    """The codec model id (hex) a result's network was trained on (its card's
    `codec_model_id`); None for RGB inputs."""
    cards = [c for c in (result.get("models") or {}).values() if isinstance(c, dict)]
    return next((c["codec_model_id"] for c in cards if c.get("codec_model_id")), None)


def codec_ids(pattern):
    """The codec model ids that the networks of `pattern`'s folders, over seeds, were trained
    on (`codec_of`); empty for RGB inputs."""
    ids = {codec_of(load(path)) for path in seed_paths(pattern + "/result.json")}
    return ids - {None}


def seed_draws(pattern, name, block="codec"):
    """[(metric `name` in percent, block)] of `pattern`'s folders over seeds, the block (what
    `tools/claims.py` compares within) each seed's codec model id (or None: RGB), or with
    block="seed" the seed itself."""
    draws = []
    for seed, path in seed_items(pattern + "/result.json"):
        result = load(path)
        value = pct((result.get("metrics") or {}).get(name))
        if value is not None:
            draws.append((value, seed if block == "seed" else codec_of(result)))
    return draws


RD_SETS = ("rd", "rd_domain")  # the rate-distortion images, and the codecs' own kind of data


def load_rd(run_dir, folder="rd"):
    """The run's rate-distortion results merged: {'dataset', 'codecs', 'baselines'} from
    RUN_DIR/FOLDER/*/rd.json (one per codec, one for the baselines) and RUN_DIR/FOLDER/rd.json
    (the layout of runs before per-codec steps), leaving out the folders the driver set aside
    (NAME.stale: they would stand over the step's own). FOLDER: one of `RD_SETS`."""
    merged = {"dataset": None, "split": None, "images_id": None, "codecs": {}, "baselines": {}}
    paths = [os.path.join(run_dir, folder, "rd.json")]
    paths += [
        path
        for path in sorted(glob.glob(os.path.join(run_dir, folder, "*", "rd.json")))
        if not os.path.basename(os.path.dirname(path)).endswith(".stale")
    ]
    for path in paths:
        part = load(path)
        if part:
            for key in ("dataset", "split", "images_id"):
                merged[key] = merged[key] or part.get(key)
            merged["codecs"].update(part.get("codecs", {}))
            merged["baselines"].update(part.get("baselines", {}))
    return merged


def pct(value):
    return None if value is None else 100.0 * value


def fmt(value):
    return "" if value is None else f"{value:.2f}"


def fmt_ci(value, half_width, pooled=False):
    """'55.20 ± 1.30' (mean and 95% half-width over seeds), '55.20 ± 2.10*' (one seed, the
    spread pooled from the rows with several), '55.20' for one seed and nothing to pool."""
    if half_width is None:
        return fmt(value)
    return f"{fmt(value)} ± {half_width:.2f}{'*' if pooled else ''}"


def mean(e):
    return None if e is None else e.mean


def half(e):
    return None if e is None else e.half_width


def rows(run_dir):
    """Table 2 rows: dicts with point, network, input, measured and paper numbers."""
    points = [p for p in POINT_ORDER if os.path.isdir(os.path.join(run_dir, "cls", p))]
    rd = load_rd(run_dir)
    table = []

    def row(point, net, cls_dir, seg_dir):
        cls = over_seeds(cls_dir + SEED, ("top5", "top1"))
        seg = over_seeds(seg_dir + SEED, ("miou",))
        if point != "original" and not cls["top1"] and not seg["miou"]:
            return  # a folder a trainer has only started: no row yet
        codec = rd["codecs"].get(f"codec_{point}", {}).get("mean", {})
        paper = PAPER.get((point, net), (None, None, None))
        estimates = {**cls, **seg}
        cls_codecs, seg_codecs = codec_ids(cls_dir + SEED), codec_ids(seg_dir + SEED)
        table.append(
            dict(
                point=point,
                network=NAMES[net],
                input="original RGB"
                if point == "original"
                else ("z" if net.startswith("c") else "reconstructed RGB"),
                bpp_measured=codec.get("bpp_real"),
                **{k: mean(e) for k, e in estimates.items()},
                **{f"{k}_ci95": half(e) for k, e in estimates.items()},
                seeds=cls["top1"].n if cls["top1"] else 0,
                seg_seeds=seg["miou"].n if seg["miou"] else 0,
                paper_top5=paper[0],
                paper_top1=paper[1],
                paper_miou=paper[2],
                estimates=estimates,
                codecs={"top5": cls_codecs, "top1": cls_codecs, "miou": seg_codecs},
                draws={
                    "top1": seed_draws(cls_dir + SEED, "top1"),
                    "miou": seed_draws(seg_dir + SEED, "miou"),
                },
            )
        )

    row("original", "resnet50", f"{run_dir}/cls/rgb/resnet50", f"{run_dir}/seg/rgb/resnet50_d")
    for point in points:
        for net in NETS:
            if os.path.isdir(os.path.join(run_dir, "cls", point, net)):
                row(point, net, f"{run_dir}/cls/{point}/{net}", f"{run_dir}/seg/{point}/{net}_d")
    # A row of one seed gets the interval of one run, its spread pooled from the rows of the
    # same metric that have several seeds (as the claims' differences borrow it).
    for metric in WITH_INTERVAL:
        sd, df = pooled_spread(table, metric)
        for r in table:
            e = stats.with_borrowed_spread(r["estimates"][metric], sd, df)
            r["estimates"][metric], r[f"{metric}_ci95"] = e, half(e)
            r[f"{metric}_ci95_pooled"] = bool(e and e.borrowed)
    return table


def pooled_spread(table, metric):
    """(sd, degrees of freedom) over seeds of `metric`, pooled over the rows of `table` that
    have several seeds ((None, 0) if none): what one-seed rows and their differences borrow."""
    return stats.pooled_sd(r["estimates"][metric] for r in table)


def joint_steps(run_dir, point):
    """{training: (classifier folder, segmenter folder, codec name in rd.json)} of a joint
    point, the folders patterns over seeds (SEED): the baseline (cResNet-51 / -51-d on the
    point's codec), the control (codec ft.) and joint finetuning (joint ft.)."""
    folder = os.path.join(run_dir, "joint", point)
    return {
        "baseline": (
            f"{run_dir}/cls/{point}/cresnet51{SEED}",
            f"{run_dir}/seg/{point}/cresnet51_d{SEED}",
            f"codec_{point}",
        ),
        "codec ft.": (f"{folder}{SEED}/control", f"{folder}{SEED}/seg_control", "codec_ft"),
        "joint ft.": (f"{folder}{SEED}/joint", f"{folder}{SEED}/seg_joint", "joint"),
    }


def joint_rows(run_dir):
    """Per joint point: baseline (fixed codec), control (codec ft.) and joint numbers, each a
    mean over the seeds of joint/P, joint/P.seedK (the baseline's over the seeds finetuned;
    metric: mean, metric_ci95: half-width, estimates: {metric: stats.Estimate})."""
    result = {}
    found = glob.glob(os.path.join(run_dir, "joint", "*"))
    # A point's seeds may have run without its seed 0 (joint/P.seed1 and no joint/P).
    points = sorted({os.path.basename(f).split(".seed")[0] for f in found if os.path.isdir(f)})
    for point in points:
        folder = os.path.join(run_dir, "joint", point)
        # The baseline over the seeds that were finetuned (each starts from its seed's
        # cResNet-51), so that the rows move from where their own networks started.
        finetuned = {
            seed
            for name in ("joint", "control")
            for seed, _ in seed_items(f"{folder}{SEED}/{name}/result.json")
        }
        entry = {}
        for name, (cls_dir, seg_dir, codec) in joint_steps(run_dir, point).items():
            seeds = finetuned if name == "baseline" and finetuned else None
            estimates = {
                **over_seeds(cls_dir, ("top5", "top1"), seeds),
                **over_seeds(seg_dir, ("miou",), seeds),
                **codec_over_seeds(folder, codec),
            }
            entry[name] = dict(
                **{k: mean(e) for k, e in estimates.items()},
                **{f"{k}_ci95": half(e) for k, e in estimates.items()},
                seeds=max((e.n for e in estimates.values() if e), default=0),
                estimates=estimates,
            )
        result[point] = entry
    return result


def joint_pairs(run_dir, point):
    """{metric: ([(joint ft., seed)], [(codec ft., seed)])} of a joint point: each seed's joint
    finetuning and its control start from the same codec and that seed's cResNet-51, so
    `tools/claims.py` compares them within each seed (the seed a block)."""
    folder = os.path.join(run_dir, "joint", point)
    pairs = {
        metric: tuple(seed_draws(f"{folder}{SEED}/{name}", metric, "seed") for name in names)
        for metric, names in (
            ("top1", ("joint", "control")),
            ("miou", ("seg_joint", "seg_control")),
        )
    }
    for seed, path in seed_items(f"{folder}{SEED}/rd/rd.json"):
        codecs = load(path).get("codecs", {})
        for side, codec in ((0, "joint"), (1, "codec_ft")):
            for metric, value in (codecs.get(codec, {}).get("mean") or {}).items():
                if metric in JOINT_CODEC_COLUMNS and value is not None:
                    pairs.setdefault(metric, ([], []))[side].append((value, seed))
    return pairs


JOINT_TRAININGS = ("baseline", "codec ft.", "joint ft.")  # joint_steps' order


def joint_seeds(run_dir):
    """{point: {seed: {training: {metric: value in percent}}}} of the seeds finetuned at each
    joint point (Fig. 7): a seed's baseline is its cResNet-51 and cResNet-51-d, its codec ft.
    and joint ft. the networks its control and joint finetuning ended with (top1, top5, miou;
    None where a step has not run)."""
    result = {}
    for point in joint_rows(run_dir):
        folder = os.path.join(run_dir, "joint", point)
        steps = {name: folders[:2] for name, folders in joint_steps(run_dir, point).items()}
        finetuned = sorted(
            {k for name in ("joint", "control") for k, _ in seed_items(f"{folder}{SEED}/{name}")}
        )
        for seed in finetuned:
            suffix = f".seed{seed}" if seed else ""
            entry = {}
            for training, patterns in steps.items():
                metrics = {}
                for pattern, names in zip(patterns, (("top1", "top5"), ("miou",))):
                    result_path = pattern.replace(SEED, suffix) + "/result.json"
                    found = (load(result_path) or {}).get("metrics") or {}
                    metrics.update({n: pct(found.get(n)) for n in names})
                entry[training] = metrics
            result.setdefault(point, {})[seed] = entry
    return result


def fig_joint(run_dir, figures=None, path=None):
    """Fig. 7: top-1, top-5 and mIoU of each finetuned seed before (baseline) and after its
    control (codec ft.) and joint finetuning, to `path` (default
    FIGURES/fig7_joint_training.png); False when no seed was finetuned."""
    seeds = joint_seeds(run_dir)
    if not seeds:
        return False
    path = path or os.path.join(figures, "fig7_joint_training.png")
    plots.joint_movement(seeds, JOINT_TRAININGS, path)
    print(f"wrote {path}")
    return True


def codec_over_seeds(folder, codec):
    """{metric: Estimate} of one codec of the joint rate-distortion runs, over the seeds."""
    values = {k: [] for k in JOINT_CODEC_COLUMNS}
    for path in seed_paths(folder + SEED + "/rd/rd.json"):
        mean_ = load(path).get("codecs", {}).get(codec, {}).get("mean", {})
        for k in JOINT_CODEC_COLUMNS:
            values[k].append(mean_.get(k))
    return {k: stats.estimate(v) for k, v in values.items()}


JOINT_CODEC_COLUMNS = ("bpp_real", "psnr", "ssim", "ms_ssim")  # the codec's, Fig. 11


COLUMNS = (
    ("point", "operating point"),
    ("bpp_measured", "bpp (real files)"),
    ("network", "network"),
    ("input", "input"),
    ("top5", "top-5 %"),
    ("top1", "top-1 %"),
    ("miou", "mIoU %"),
    ("paper_top5", "paper top-5 %"),
    ("paper_top1", "paper top-1 %"),
    ("paper_miou", "paper mIoU %"),
    ("seeds", "seeds (cls / seg)"),
)
CSV_COLUMNS = [c for c, _ in COLUMNS] + ["top5_ci95", "top1_ci95", "miou_ci95", "seg_seeds"]
CSV_COLUMNS += ["top5_ci95_pooled", "top1_ci95_pooled", "miou_ci95_pooled"]
WITH_INTERVAL = ("top5", "top1", "miou")


def seeds_cell(row):
    """A row's seeds, classification / segmentation, and the codecs they were trained on where
    they were trained on more than one (a codec retrained on a new machine: tools/claims.py)."""
    cell = f"{row['seeds']} / {row['seg_seeds']}"
    n = [len(row["codecs"][m]) for m in ("top1", "miou")]
    return cell + (f" on {n[0]} / {n[1]} codecs" if max(n) > 1 else "")


def write_tables(run_dir, scale, table, joint):
    with open(os.path.join(run_dir, "table2.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)
    lines = [
        f"# Table 2 ({scale} scale, run {os.path.basename(os.path.normpath(run_dir))})",
        "",
        "Measured here beside the paper's Table 2 (ImageNet top-1/top-5 after 28 epochs; PASCAL "
        "VOC 2012 mIoU). At tiny and small scale the data, budgets and network widths differ from "
        "the paper's (see the driver's budget lines), so compare orderings, not values. A row "
        "trained with several seeds shows their mean ± the half-width of its 95% interval "
        "(Student t over seeds); a row of one seed (marked *) the 95% interval of one run, its "
        "spread over seeds pooled from the rows of that metric with several seeds. A row's "
        "seeds may lie on codecs trained again (a new machine): the seeds column then counts "
        "them.",
        "",
        "| " + " | ".join(h for _, h in COLUMNS) + " |",
        "|" + " --- |" * len(COLUMNS),
    ]
    for r in table:
        cells = []
        for c, _ in COLUMNS:
            if c in WITH_INTERVAL:
                cells.append(fmt_ci(r[c], r[f"{c}_ci95"], r[f"{c}_ci95_pooled"]))
            elif c == "seeds":
                cells.append(seeds_cell(r))
            elif c == "bpp_measured" and r[c] is not None:
                cells.append(f"{r[c]:.4f}")
            else:
                cells.append(fmt(r[c]) if isinstance(r[c], float) or r[c] is None else r[c])
        lines.append("| " + " | ".join(cells) + " |")
    if joint:
        table_lines, joint_csv = joint_table(joint)
        lines += [
            "",
            "## Joint training (Section 6, Fig. 7, 11): cResNet-51 / cResNet-51-d and the codec",
            "",
            *table_lines,
        ]
        with open(os.path.join(run_dir, "table2_joint.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, list(joint_csv[0]))
            writer.writeheader()
            writer.writerows(joint_csv)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(run_dir, "table2.md"), "w") as f:
        f.write(text)
    return text


def joint_table(joint):
    """The joint-training table of `joint_rows` as markdown lines (after its caption), and its
    rows for table2_joint.csv."""
    lines = [
        "Baseline: the operating point's codec and cResNet-51 as above; codec ft.: the "
        "paper's control (codec finetuned alone, cResNet-51 from scratch on it, then more "
        "epochs with the codec fixed); joint ft.: Eq. (2). Codec metrics are on the "
        "rate-distortion images.",
        "",
        "| operating point | training | top-5 % | top-1 % | mIoU % | codec bpp (real files) "
        "| PSNR dB | SSIM | MS-SSIM | seeds |",
        "|" + " --- |" * 10,
    ]
    rows_csv = []
    for point, entry in joint.items():
        for name, m in entry.items():
            codec = [
                "-" if m[k] is None else f"{m[k]:.4f}" if k != "psnr" else f"{m[k]:.2f}"
                for k in JOINT_CODEC_COLUMNS
            ]
            scores = [fmt_ci(m[k], m[f"{k}_ci95"]) for k in WITH_INTERVAL]
            lines.append(
                f"| {point} | {name} | {' | '.join(scores)} | {' | '.join(codec)} | {m['seeds']} |"
            )
            rows_csv.append(
                {"point": point, "training": name}
                | {k: v for k, v in m.items() if k != "estimates"}
            )
    return lines, rows_csv


CURVE_FOLDERS = ("rgb",) + POINT_ORDER  # the panels of Fig. 3 / 4: the original images first


def fig_curves(run_dir, figures=None, kind="cls", metric=None, path=None):
    """Fig. 3 (classification, `metric` top5 per epoch, the paper's, or top1) or Fig. 4
    (segmentation, miou per step): a panel per operating point (and the original images), a
    colour per network, each seed a thin line and the mean over a network's seeds a thick one
    (at the x every seed reached). To `path` (default FIGURES/fig3_... or fig4_...); False
    when no trainer left a curve."""
    metric = metric or ("top5" if kind == "cls" else "miou")
    root = os.path.join(run_dir, "cls" if kind == "cls" else "seg")
    x_key = "epoch" if kind == "cls" else "step"
    panels = {}
    for point in [p for p in CURVE_FOLDERS if os.path.isdir(os.path.join(root, p))]:
        series = {}
        for net in NETS:
            name = net if kind == "cls" else f"{net}_d"
            seeds = []
            for _, curve_path in seed_items(os.path.join(root, point, name + SEED, "curve.json")):
                curve = load(curve_path) or []
                seeds.append(
                    [(c[x_key], 100 * c[metric]) for c in curve if c.get(metric) is not None]
                )
            if any(seeds):
                series[NAMES[net] + ("" if kind == "cls" else "-d")] = [s for s in seeds if s]
        if series:
            panels["original" if point == "rgb" else point.replace("bpp", "") + " bpp"] = series
    if not panels:
        return False
    labels = {"top5": "top-5 accuracy %", "top1": "top-1 accuracy %", "miou": "mIoU %"}
    name = "fig3_classification_curves.png" if kind == "cls" else "fig4_segmentation_curves.png"
    path = path or os.path.join(figures, name)
    plots.seeded_curves(panels, path, x_key, labels[metric])
    print(f"wrote {path}")
    return True


def fig_flops(run_dir, figures, table):
    """Fig. 6: top-5 and mIoU at 0.0983 bpp vs GMACs, with and without the decoder's cost."""
    macs = {r["name"]: r["macs"] for r in load(os.path.join(run_dir, "flops.json")) or []}
    rows_ = [r for r in table if r["point"] == "bpp0.0983"]
    if not rows_ or not macs:
        return
    panels = {}
    for title, metric, suffix, label in (
        ("classification, 0.0983 bpp", "top5", "", "top-5 accuracy %"),
        ("segmentation, 0.0983 bpp", "miou", "_d", "mIoU %"),
    ):
        series = {"z (cResNet)": [], "reconstructed (ResNet)": [], "reconstructed + decoder": []}
        for r in rows_:
            net = next(k for k, v in NAMES.items() if v == r["network"])
            cost = macs.get(net + suffix)
            if r[metric] is None or cost is None:
                continue
            if registry.get(net).input_kind == "latent":
                series["z (cResNet)"].append((cost / 1e9, r[metric], r["network"]))
            else:
                series["reconstructed (ResNet)"].append((cost / 1e9, r[metric], r["network"]))
                decoder = macs["decoder_320"] if suffix else macs["decoder"]
                total = (cost + decoder) / 1e9
                series["reconstructed + decoder"].append((total, r[metric], r["network"]))
        panels[title] = (label, series)
    path = os.path.join(figures, "fig6_accuracy_vs_flops.png")
    plots.accuracy_vs_flops(panels, path)
    print(f"wrote {path}")


def fig_joint_rd(run_dir, figures=None, path=None):
    """Fig. 11: the codec's bpp and PSNR / SSIM / MS-SSIM before and after finetuning, per
    point and seed, to `path` (default FIGURES/fig11_joint_rate_distortion.png); False when no
    joint run has its rate-distortion step."""
    names = {"codec_ft": "codec ft.", "joint": "joint ft."}
    results = {}
    for rd_path in sorted(glob.glob(os.path.join(run_dir, "joint", "*", "rd", "rd.json"))):
        point = os.path.basename(os.path.dirname(os.path.dirname(rd_path)))
        codecs = load(rd_path)["codecs"]  # baseline codec, codec_ft, joint
        label = point.replace(".seed", " seed ")
        results[label] = {names.get(k, "baseline"): v["mean"] for k, v in codecs.items()}
    if not results:
        return False
    path = path or os.path.join(figures, "fig11_joint_rate_distortion.png")
    plots.joint_rate_distortion(results, path)
    print(f"wrote {path}")
    return True


def fig_runtime(run_dir, figures):
    """Fig. 12: ms per image, decoder + ResNet vs cResNet, per batch size."""
    bench = load(os.path.join(run_dir, "bench", "inference.json"))
    if bench:
        path = os.path.join(figures, "fig12_runtime.png")
        title = f"width {bench['width']}, {bench['cpu_count']} CPU cores"
        plots.runtime(bench["float32"]["rows"], path, title)
        print(f"wrote {path}")


def dataset_title(dataset):
    """A figure's name of a dataset string: a path's last folder (folder:/data/kodak ->
    folder:kodak), so figures do not carry the machine's paths."""
    kind, sep, path = (dataset or "").partition(":")
    return f"{kind}:{os.path.basename(path.rstrip('/'))}" if sep and "/" in path else dataset


def curve_rd_set(sets, point):
    """The rate-distortion set (a folder of `RD_SETS`; `sets`: {folder: `load_rd`'s}) measured
    on the images of a codec curve's `point`, or None: the set whose `images_id` the point
    records; where the point or the set is older than that record, the set of the same dataset
    (its folder's name) and split; a point that records neither (curves before them), "rd",
    whose images the presets' curves use."""
    if "dataset" not in point:
        return "rd"
    for folder, rd in sets.items():
        if point.get("images_id") and rd["images_id"]:
            if point["images_id"] == rd["images_id"]:
                return folder
        elif rd["dataset"] and (dataset_title(rd["dataset"]), rd["split"]) == (
            dataset_title(point["dataset"]),
            point["split"],
        ):
            return folder
    return None


def codec_curves(run_dir, baseline="jpeg2000"):
    """{codec folder: [curve point]} of RUN_DIR/codec_*/curve.json (the codec measured on the
    rate-distortion images while it trained, tools/codec_curve.py), each point with `baseline`
    added: {metric: the baseline's at the point's real bpp}, interpolated in the baseline's
    sweep of the set measured on the point's images (`curve_rd_set`, recorded as "rd_set"),
    {} outside the sweep or where no set was measured on them."""
    sets = {folder: load_rd(run_dir, folder) for folder in RD_SETS}
    curves = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "codec_*", "curve.json"))):
        points = []
        for point in load(path):
            folder = curve_rd_set(sets, point)
            sweep = sets[folder]["baselines"].get(baseline, []) if folder else []
            rows = sorted(sweep, key=lambda r: r["bpp_real"])
            xs = [r["bpp_real"] for r in rows]
            at = {}
            if xs and xs[0] <= point["bpp_real"] <= xs[-1]:
                at = {
                    m: float(np.interp(point["bpp_real"], xs, [r[m] for r in rows]))
                    for m in plots.METRIC_LABELS
                }
            points.append({**point, baseline: at, "rd_set": folder})
        curves[os.path.basename(os.path.dirname(path))] = points
    return curves


def codec_curves_title(run_dir, curves):
    """The title of the codec-curves figure: the datasets of the sets the curves' last points
    were compared with."""
    names = sorted(
        {
            dataset_title(load_rd(run_dir, points[-1]["rd_set"])["dataset"])
            for points in curves.values()
            if points and points[-1]["rd_set"]
        }
    )
    return "codecs while they train, on " + (", ".join(names) or "their curve images")


def fig_codec_curves(run_dir, figures):
    """The codecs' quality on the rate-distortion images over training steps, beside JPEG 2000
    at the same real bpp: how far each is from the paper's claim and how fast it moves."""
    curves = codec_curves(run_dir)
    if curves:
        path = os.path.join(figures, "codec_curves.png")
        plots.codec_curves(curves, "jpeg2000", path, codec_curves_title(run_dir, curves))
        print(f"wrote {path}")


def fig_rate_distortion(run_dir, figures):
    """Fig. 8 from the merged rate-distortion results (and from the second set on the codecs'
    own kind of data, `_domain`); Fig. 9 (latent channels) copied from the codecs' evaluations."""
    for folder in RD_SETS:
        rd = load_rd(run_dir, folder)
        if rd["codecs"] or rd["baselines"]:
            suffix = folder[len("rd") :]
            path = os.path.join(figures, f"fig8_rate_distortion{suffix}.png")
            plots.rate_distortion(
                rd["baselines"],
                {label: r["mean"] for label, r in rd["codecs"].items()},
                path,
                title=dataset_title(rd["dataset"]),
            )
            print(f"wrote {path}")
    latents = glob.glob(os.path.join(run_dir, "rd", "latents_*.png"))
    for src in sorted(latents + glob.glob(os.path.join(run_dir, "rd", "*", "latents_*.png"))):
        name = os.path.basename(src)[len("latents_") :]
        shutil.copyfile(src, os.path.join(figures, f"fig9_latents_{name}"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--scale", default="")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.run_dir):
        sys.exit(f"error: run folder {args.run_dir!r} does not exist")
    figures = os.path.join(args.run_dir, "figures")
    os.makedirs(figures, exist_ok=True)
    table = rows(args.run_dir)
    joint = joint_rows(args.run_dir)
    print(write_tables(args.run_dir, args.scale, table, joint))
    fig_curves(args.run_dir, figures, "cls")
    fig_curves(args.run_dir, figures, "seg")
    fig_flops(args.run_dir, figures, table)
    fig_joint(args.run_dir, figures)
    fig_joint_rd(args.run_dir, figures)
    fig_runtime(args.run_dir, figures)
    fig_rate_distortion(args.run_dir, figures)
    fig_codec_curves(args.run_dir, figures)
    missing = [r["network"] + " @ " + r["point"] for r in table if r["top5"] is None]
    if missing:
        print("rows without a classification result yet: " + ", ".join(missing))


if __name__ == "__main__":
    main()
