"""The paper's claims, each checked against a Table 2 run: measured effect, interval, verdict.

  .venv/bin/python tools/claims.py --run_dir=runs/table2_small      (or a results/ folder)

Writes RUN_DIR/claims.md and RUN_DIR/claims.json and prints the table. Each claim is quoted with
its section, turned into one measured difference (e.g. cResNet-51 on z minus ResNet-50 on
reconstructions, top-1 points) and a rule:

    greater      the claim says A > B:      holds if the 95% interval of A - B is above 0,
                                            contradicted if it is below 0
    not worse    A >= B within a margin m:  holds if the interval is above -m,
                                            contradicted if it is below -m
    equivalent   A ~ B within a margin m:   holds if the interval lies inside (-m, m),
                                            contradicted if it lies outside it

and "not resolved at this scale" otherwise, with the reason. Intervals are Welch's over the
seeds of the two rows (tfcomp.eval.stats); a row with one seed borrows the spread over seeds
pooled from the run's rows of that metric that have several seeds (two such rows share that
one estimate and its degrees of freedom; so does a codec-blocked difference whose fit leaves no
residual), and a difference with no spread to judge by is not resolved. Rate-distortion claims
compare each rate-distortion image's codec point with that image's own baseline curve
interpolated at the image's real bpp (outside the curve's rates, with its nearest point where
that decides: `against_curve`), the interval a paired t interval over images (`per_image`); a
sweep measured before baselines kept their images is compared by its mean curve, with no
interval. Operation counts are exact: those have no interval.

Given the run's scale (`--scale`, and `--points` where the run was given fewer), each comparison
the scale's plan will make that has no measurement yet is listed as "not run yet", naming the
unfinished steps it waits for: the table is the whole checklist of the paper's claims, not only
those a partial run reaches.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from table2 import (  # noqa: E402
    NAMES,
    POINT_ORDER,
    RD_SETS,
    joint_pairs,
    joint_rows,
    load,
    load_rd,
    pooled_spread,
    rows,
)

from tfcomp import io  # noqa: E402
from tfcomp.eval import stats  # noqa: E402

# Equivalence margins (points of top-1 / mIoU): our choice, stated in the table. The paper's own
# differences between the rows it calls comparable are below 1 point.
MARGIN_TOP1 = 2.0
MARGIN_MIOU = 2.0

HOLDS, CONTRADICTED, OPEN = "holds", "contradicted", "not resolved"
PENDING = "not run yet"

QUOTES = {
    "z_vs_reconstructed": (
        "Abstract; Section 4.5, Table 2",
        "accuracies comparable to networks that operate on compressed RGB images can be achieved",
    ),
    "cresnet39": (
        "Section 7; Table 2",
        "the DNN adapted models can be of smaller depth than those using the decoded RGB images "
        "for comparable performance",
    ),
    "segmentation": (
        "Section 5.4",
        "ResNet-50-d and cResNet-51-d perform equally well at the 0.635 bpp [point] ... at the "
        "0.0983 bpp operating point segmentation from the compressed representation performs "
        "considerably better",
    ),
    "joint": (
        "Section 1, 6.2; Appendix A.7",
        "When jointly training for image compression and classification, we observe an increase "
        "in SSIM and MS-SSIM and, at the same time, an improved segmentation and classification "
        "accuracy",
    ),
    "rd": (
        "Section 3.1",
        "these operating points outperform JPEG and the newer JPEG-2000 on the perceptual "
        "metrics SSIM and MS-SSIM",
    ),
    "flops": (
        "Abstract; Section 4.5, Fig. 6",
        "reducing the computational complexity up to 2x",
    ),
}


def verdict(diff, rule, margin=0.0):
    """(verdict, reason) of one measured difference (a stats.Estimate, or None)."""
    if diff is None:
        return OPEN, "a row is missing from the run"
    if diff.half_width is None:
        return OPEN, "one seed per row and no rows with several seeds to estimate the spread"
    lo, hi = diff.low, diff.high
    if rule == "greater":
        if lo > 0:
            return HOLDS, ""
        if hi < 0:
            return CONTRADICTED, ""
    elif rule == "not worse":
        if lo > -margin:
            return HOLDS, ""
        if hi < -margin:
            return CONTRADICTED, ""
    elif rule == "equivalent":
        if -margin < lo and hi < margin:
            return HOLDS, ""
        if lo >= margin or hi <= -margin:
            return CONTRADICTED, ""
    else:
        raise ValueError(f"unknown rule {rule!r}")
    return OPEN, "the 95% interval is too wide at this scale's seeds and budget"


def rule_text(rule, margin, unit):
    if rule == "greater":
        return "> 0"
    if rule == "not worse":
        return f"> -{margin:g} {unit}"
    return f"within ±{margin:g} {unit}"


class Claims:
    """Collects the checked claims of one run. With `plan` (a reproduce_table2 `Plan` of the
    run's folder), a comparison that has no measurement is "not run yet" when the plan has
    every step it `needs` (the reason names those unfinished), and left out when the plan never
    runs one of them; without a plan it is "not resolved" (a row is missing)."""

    def __init__(self, plan=None):
        self.items = []
        self.planned = None if plan is None else {s.name for s in plan.steps}
        self.unfinished = (
            None if plan is None else {s.name for s in plan.steps if not os.path.exists(s.result)}
        )

    def _append(
        self, key, what, rule, measured, low, high, seeds, verdict_, reason, ratio, per="seeds"
    ):
        section, quote = QUOTES[key]
        self.items.append(
            dict(claim=key, section=section, quote=quote, what=what, rule=rule, measured=measured,
                 ratio=ratio, low=low, high=high, seeds=seeds, per=per, verdict=verdict_,
                 reason=reason)
        )  # fmt: skip

    def add(
        self, key, what, diff, rule, margin=0.0, unit="points", note="", blocked="", needs=(),
        per="seeds",
    ):  # fmt: skip
        """`blocked`: why the difference cannot be judged although both rows exist; `needs`:
        the steps whose results the difference is measured from; `per`: what the interval is
        over (seeds, or images for a rate-distortion comparison)."""
        label = rule_text(rule, margin, unit)
        if diff is None and not blocked and self.pending(key, what, label, needs):
            return
        result, reason = (OPEN, blocked) if blocked else verdict(diff, rule, margin)
        if per != "seeds" and result == OPEN and not blocked and diff is not None:
            reason = f"the 95% interval over {per} includes the rule's bound ({label})"
        d = diff or stats.Estimate(None, None, None)
        reason = "; ".join(r for r in (reason, note) if r)
        self._append(key, what, label, d.mean, d.low, d.high, d.n, result, reason, False, per)

    def add_exact(self, key, what, value, rule_label, ok, note="", ratio=False):
        """A claim measured without sampling error (operation counts, one codec's RD means)."""
        result = OPEN if ok is None else (HOLDS if ok else CONTRADICTED)
        self._append(key, what, rule_label, value, None, None, None, result, note, ratio)

    def pending(self, key, what, rule_label, needs):
        """Records a comparison with no measurement yet as "not run yet", naming the unfinished
        steps of `needs`; True when it is dealt with (recorded, or left out because the plan
        never runs one of `needs`), False without a plan or when every step of `needs` has
        finished (then something else is missing: the caller says what)."""
        if self.planned is None or not needs:
            return False
        if not set(needs) <= self.planned:
            return True
        waiting = [n for n in needs if n in self.unfinished]
        if not waiting:
            return False
        reason = "waits for " + ", ".join(waiting)
        self._append(key, what, rule_label, None, None, None, None, PENDING, reason, False)
        return True


def table_claims(run_dir, claims, points=None):
    """Classification and segmentation claims from Table 2's rows, at `points` (default: those
    with rows)."""
    table = rows(run_dir)
    by = {(r["point"], r["network"]): r["estimates"] for r in table}
    codecs = {(r["point"], r["network"]): r["codecs"] for r in table}
    draws = {(r["point"], r["network"]): r["draws"] for r in table}
    spread = {m: pooled_spread(table, m) for m in ("top1", "miou")}

    def diff(point, a, b, metric):
        ea, eb = (by.get((point, NAMES[n]), {}).get(metric) for n in (a, b))
        sd, df = spread[metric]
        return stats.difference(ea, eb, sd=sd, sd_df=df)

    def borrowed(point, a, b, metric):
        ea, eb = (by.get((point, NAMES[n]), {}).get(metric) for n in (a, b))
        if ea and eb and min(ea.n, eb.n) < 2 and spread[metric][0] is not None:
            return f"spread over seeds pooled from the rows with several seeds ({metric})"
        return ""

    def mixed(point, a, b, metric):
        """(how two rows are compared over the codecs they were trained on (their cards' codec
        model ids): "as they are", "blocked" or "refused", and why). Rows on one and the same
        codec are compared as they are. A codec retrained (e.g. on a new machine, as models stay
        out of git) is another draw of the same training: rows whose every seed has a codec of
        its own are compared over their own seeds, whose spread then holds the codecs' variation
        too. Rows whose seeds share codecs otherwise are compared with the codec as a block
        (`stats.blocked_difference`), when the rows share at least one codec; rows that share
        none, a row of one seed on another codec among them, would put the difference of two
        codecs into the difference of the networks."""
        ids = [codecs.get((point, NAMES[n]), {}).get(metric) or set() for n in (a, b)]
        if not all(ids) or (len(ids[0]) == 1 and ids[0] == ids[1]):
            return "as they are", ""
        seeds = [getattr(by.get((point, NAMES[n]), {}).get(metric), "n", 0) for n in (a, b)]
        if all(len(i) == k >= 2 for i, k in zip(ids, seeds)):
            return "as they are", ""
        found = " vs ".join(
            f"{len(i)} codec{'s' if len(i) > 1 else ''} ({'/'.join(sorted(i))}) for {k} "
            f"seed{'s' if k > 1 else ''}"
            for i, k in zip(ids, seeds)
        )
        if ids[0] & ids[1]:
            return "blocked", (
                f"seeds on codec draws shared by the rows ({found}): the difference within "
                "each codec, the codec a block (least squares; the interval from {source})"
            )
        return "refused", (
            f"the rows were trained on different codecs ({found}): rows on different codec "
            "draws are compared when each of their seeds (2 or more) has a codec of its own, "
            "when they share a codec, or trained again on one"
        )

    def compare(key, point, a, b, *, metric, rule, margin, what):
        """Claim `key` at `point`: row `a` - row `b` on `metric`, judged by `rule`."""
        kind = "cls/{}/{}" if metric == "top1" else "seg/{}/{}_d"
        how, why = mixed(point, a, b, metric)
        if how == "blocked":
            rows_ = [draws[(point, NAMES[n])][metric] for n in (a, b)]
            measured = stats.blocked_difference(*rows_)
            source = "the residual spread"
            if measured.half_width is None and spread[metric][0] is not None:
                # No residual left: each shared codec holds one seed of each row.
                measured = stats.blocked_difference(*rows_, *spread[metric])
                source = (
                    f"the spread over seeds pooled from the rows with several seeds ({metric}), "
                    "as the fit leaves no residual"
                )
            note = why.replace("{source}", source)
        else:
            measured, note = diff(point, a, b, metric), borrowed(point, a, b, metric)
        claims.add(
            key,
            f"{point}: {what}",
            measured,
            rule,
            margin,
            note=note,
            blocked=why if how == "refused" else "",
            needs=[kind.format(point, n) for n in (a, b)],
        )

    top1 = dict(metric="top1", rule="equivalent", margin=MARGIN_TOP1)
    if points is None:
        points = [p for p in POINT_ORDER if any(r["point"] == p for r in table)]
    points = [p for p in POINT_ORDER if p in points]
    # Table 2's pairs of equal cost (Table 1): ResNet-50 / cResNet-51 at every point, and
    # ResNet-71 / cResNet-72 at 0.0983 bpp ("at a fixed computational cost, the reconstructed
    # compressed RGB images perform about 0.25% better", Section 4.5).
    pairs = [(p, "cresnet51", "resnet50") for p in points]
    pairs += [("bpp0.0983", "cresnet72", "resnet71")] if "bpp0.0983" in points else []
    for p, z_net, rgb_net in pairs:
        what = f"top-1, {NAMES[z_net]} on z - {NAMES[rgb_net]} on reconstructions"
        compare("z_vs_reconstructed", p, z_net, rgb_net, what=what, **top1)
    if "bpp0.0983" in points:
        what = "top-1, cResNet-39 on z - cResNet-51 on z"
        compare("cresnet39", "bpp0.0983", "cresnet39", "cresnet51", what=what, **top1)
    rules = {"bpp0.635": "equivalent", "bpp0.330": "not worse", "bpp0.0983": "greater"}
    for p, z_net, rgb_net in pairs:
        what = f"mIoU, {NAMES[z_net]}-d on z - {NAMES[rgb_net]}-d on reconstructions"
        compare(
            "segmentation",
            p,
            z_net,
            rgb_net,
            metric="miou",
            rule=rules[p],
            margin=MARGIN_MIOU,
            what=what,
        )


def joint_difference(pairs, joint, control, metric):
    """(joint ft. - codec ft., note): within each seed where some seed has both (the seed a
    block, `stats.blocked_difference`: a paired comparison, as each seed's two finetunings
    start from the same codec and cResNet-51), else the rows' difference over their seeds."""
    a, b = pairs.get(metric, ([], []))
    paired = stats.blocked_difference(a, b)
    if paired is not None:
        shared = len({s for _, s in a} & {s for _, s in b})
        return paired, f"paired by seed ({shared} seed{'s' if shared > 1 else ''} with both)"
    return stats.difference(joint[metric], control[metric]), ""


def joint_claims(run_dir, claims, points=()):
    """Section 6: joint finetuning against its control (codec ft.), per metric; at `points`
    without a joint run, a comparison waiting for its steps (with a plan)."""
    done = joint_rows(run_dir)

    def needs(point):  # the plan's steps of the point's chain (seed 0)
        return [n for n in sorted(claims.planned or ()) if n.startswith(f"joint/{point}/")]

    for point in points:
        if point not in done:
            what = f"{point}: top-1, mIoU, SSIM, MS-SSIM, joint ft. - codec ft. (the control)"
            claims.pending("joint", what, "> 0", needs(point))
    for point, entry in done.items():
        joint, control = entry["joint ft."]["estimates"], entry["codec ft."]["estimates"]
        pairs = joint_pairs(run_dir, point)

        bpp, _ = joint_difference(pairs, joint, control, "bpp_real")
        at = "" if bpp is None else f"at {bpp.mean:+.4f} bpp (joint - control)"
        for metric, label, unit in (
            ("top1", "top-1 %", "points"),
            ("miou", "mIoU %", "points"),
            ("ssim", "SSIM", ""),
            ("ms_ssim", "MS-SSIM", ""),
        ):
            # Every metric at the two codecs' rates: a finetuning that spends more bits has
            # more to classify and segment from, not only better reconstructions.
            d, paired = joint_difference(pairs, joint, control, metric)
            claims.add(
                "joint",
                f"{point}: {label}, joint ft. - codec ft. (the control)",
                d,
                "greater",
                unit=unit,
                note="; ".join(n for n in (paired, at) if n),
                needs=needs(point),
            )


def dataset_label(spec):
    """A dataset spec without the machine's paths: "folder:/data/kodak" -> "kodak"."""
    if not spec:
        return "?"
    _, _, path = spec.partition(":")
    return os.path.basename(path.rstrip("/")) if "/" in path else spec


RD_STEPS = {"rd": "rate_distortion", "rd_domain": "rate_distortion_domain"}  # the driver's


def rd_claims(run_dir, claims, points=()):
    """Section 3.1: each codec above JPEG and JPEG 2000 on SSIM and MS-SSIM at its real bpp, on
    the rate-distortion images and, where the run has it, on the codecs' own kind of data (the
    paper's claim is on ILSVRC2012 data); codecs of `points` not measured yet wait (with a
    plan)."""
    for folder in RD_SETS:
        rd = load_rd(run_dir, folder)
        where = "" if folder == "rd" else f" on {dataset_label(rd.get('dataset'))}"
        for p in points:
            if f"codec_{p}" not in rd["codecs"]:
                needs = [f"{RD_STEPS[folder]}/{p}", f"{RD_STEPS[folder]}/baselines"]
                what = f"codec_{p}{where}: SSIM and MS-SSIM - jpeg, jpeg2000"
                claims.pending("rd", what, "> 0", needs)
        for name, codec in sorted(rd["codecs"].items()):
            codec_claims(claims, rd, f"{name}{where}", codec, RD_STEPS[folder])


def per_image(images, curve, metric):
    """(stats.Estimate over images of each image's codec `metric` minus its own baseline curve
    at its own real bpp, as `against_curve` judges one point, or None, why not). `images`: the
    codec's {name: record}; `curve`: baseline points each with its "images" records."""
    if not images:
        return None, "the codec's evaluation has no per-image records"
    if not all("images" in point for point in curve):
        return (
            None,
            "the baseline's sweep has no per-image records (measured before they were kept)",
        )
    differences, undecided = [], 0
    for name, record in images.items():
        if record.get(metric) is None:  # undefined for this image (MS-SSIM below 161 px)
            continue
        own = [point["images"].get(name) for point in curve]
        if any(p is None or p.get(metric) is None for p in own):
            return None, f"{name} is not in every point of the baseline's sweep"
        own = sorted(own, key=lambda p: p["bpp_real"])
        value, _, _ = against_curve(record[metric], record["bpp_real"], own, metric)
        if value is None:
            undecided += 1
        differences.append(value)
    if not differences:
        return None, f"no image has its {metric}"
    if undecided:
        return None, (
            f"{undecided} of {len(differences)} images lie outside their own baseline curve's "
            "rates where its nearest point does not decide"
        )
    return stats.estimate(differences), ""


def codec_claims(claims, rd, name, codec, step="rate_distortion"):
    """One codec's SSIM and MS-SSIM against JPEG's and JPEG 2000's curves of `rd`, at equal
    real bpp. Where the codec and every baseline point record each image, the verdict is the
    per-image comparison's (`per_image`: each image against its own baseline curve, the 95%
    interval over images, so a difference smaller than the images' spread is not resolved);
    otherwise the mean curves' difference decides, with no interval. The note gives the mean
    curves' difference beside a per-image one, and, where both sides record it, the difference
    at equal bytes after the files' headers (`bpp_payload`: a JPEG 2000 file of ~600 bytes
    spends ~226 on its headers, the codec's 32)."""
    mean = codec["mean"]
    bpp = mean["bpp_real"]
    for baseline in ("jpeg", "jpeg2000"):
        curve = sorted(rd["baselines"].get(baseline, []), key=lambda r: r["bpp_real"])
        for metric in ("ssim", "ms_ssim"):
            what = f"{name} ({bpp:.3f} bpp): {metric.upper().replace('_', '-')} - {baseline}"
            if not curve:
                if not claims.pending("rd", what, "> 0", [f"{step}/baselines"]):
                    claims.add_exact("rd", what, None, "> 0", None, "baseline not run")
                continue
            value, holds, note = against_curve(mean[metric], bpp, curve, metric)
            dataset = dataset_label(rd.get("dataset"))
            paired, why_not = per_image(codec.get("images"), curve, metric)
            if paired is not None:
                mean_curves = "not resolved" if value is None else f"{value:+.4f}"
                note = (
                    f"each of the {paired.n} {dataset} images against its own baseline curve "
                    f"(95% interval over images); the mean curves: {mean_curves}, {note}"
                )
            else:
                note = f"mean over {dataset} images; {note}; no interval: {why_not}"
            if "bpp_payload" in mean and all("bpp_payload" in r for r in curve):
                payload = mean["bpp_payload"]
                by_payload = sorted(curve, key=lambda r: r["bpp_payload"])
                after, _, _ = against_curve(
                    mean[metric], payload, by_payload, metric, "bpp_payload"
                )
                note += f"; at equal bytes after the headers ({payload:.3f} bpp): " + (
                    "not resolved" if after is None else f"{after:+.4f}"
                )
            if paired is not None:
                claims.add("rd", what, paired, "greater", note=note, per="images")
            else:
                claims.add_exact("rd", what, value, "> 0", holds, note)


def against_curve(value, bpp, curve, metric, rate="bpp_real"):
    """A codec's `metric` at `bpp` against a baseline's curve (points sorted by `rate`):
    (codec - baseline, whether the codec is above, note). Inside the curve's rates the curve is
    interpolated. Outside them a baseline's quality is taken to grow with its rate: a codec
    below the lowest rate that beats the lowest point beats every rate the baseline reaches
    (and the baseline cannot reach the codec's), so the claim holds; a codec above the highest
    rate that trails the highest point is beaten with fewer bits, so it is contradicted; the
    other two cases are not resolved (difference None)."""
    xs, ys = [r[rate] for r in curve], [r[metric] for r in curve]
    if xs[0] <= bpp <= xs[-1]:
        value = value - float(np.interp(bpp, xs, ys))
        return value, value > 0, "baseline interpolated"
    end = 0 if bpp < xs[0] else -1
    side = "below the lowest" if end == 0 else "above the highest"
    note = f"{bpp:.3f} bpp is {side} rate of the baseline's sweep ({xs[0]:.3f}-{xs[-1]:.3f})"
    difference = value - ys[end]
    if end == 0 and difference > 0:
        return difference, True, f"{note}; above its {xs[0]:.3f} bpp point, which spends more bits"
    if end == -1 and difference < 0:
        return difference, False, f"{note}; below its {xs[-1]:.3f} bpp point, which spends fewer"
    return None, None, note


def flops_claims(run_dir, claims):
    """Abstract: up to 2x fewer operations than decoder + ResNet-50 (exact counts)."""
    macs = {r["name"]: r["macs"] for r in load(os.path.join(run_dir, "flops.json")) or []}
    needed = ("decoder", "resnet50", "cresnet39", "cresnet51")
    if not all(n in macs for n in needed):
        claims.pending("flops", "MACs of decoder + ResNet-50 / cResNet-51, -39", "> 1", ["flops"])
        return
    rgb = macs["decoder"] + macs["resnet50"]
    for net in ("cresnet51", "cresnet39"):
        ratio = rgb / macs[net]
        claims.add_exact(
            "flops",
            f"MACs of decoder + ResNet-50 / {NAMES[net]} (224 px input)",
            ratio,
            ">= 1.8 (2x within 10%)" if net == "cresnet39" else "> 1",
            ratio >= 1.8 if net == "cresnet39" else ratio > 1,
            "exact operation counts (experiments.count_flops)",
            ratio=True,
        )


def check(run_dir, scale=None, points=None):
    """Every claim checkable from the run's files, as a list of dicts; with the run's `scale`
    (and `points`, default the scale's), also each comparison its plan will make that waits
    for steps ("not run yet")."""
    if scale is None:
        claims = Claims()
        table_claims(run_dir, claims)
        joint_claims(run_dir, claims)
        rd_claims(run_dir, claims)
    else:
        from reproduce_table2 import scale_plan

        plan = scale_plan(scale, run_dir, points)
        claims = Claims(plan)
        table_claims(run_dir, claims, plan.points)
        joint_claims(run_dir, claims, plan.joint_points)
        rd_claims(run_dir, claims, [p for p in POINT_ORDER if p in plan.points])
    flops_claims(run_dir, claims)
    return claims.items


def _num(value, digits):
    return "" if value is None else f"{value:+.{digits}f}"


def _count(item):
    """The n column: '3 seeds', '24 images', or '' where nothing was sampled."""
    n = item.get("seeds")
    if not n:
        return ""
    per = item.get("per", "seeds")
    return f"{n} {per.rstrip('s') if n == 1 else per}"


def markdown(items, run_dir):
    lines = [
        f"# The paper's claims against {run_dir}",
        "",
        "Each row: a claim (quoted, with its section), the measured difference, its 95% "
        "interval (Welch's, over seeds; one-seed rows share the pooled spread's degrees of "
        "freedom; a codec against a baseline: over images, each image's codec point against "
        "that image's own baseline curve), the rule the verdict applies, and the verdict. "
        f"Equivalence margins: {MARGIN_TOP1:g} points top-1, {MARGIN_MIOU:g} points mIoU "
        "(our choice; the paper's own differences between rows it calls comparable are below 1 "
        "point).",
        "",
        "| claim (section) | measured | difference | 95% interval | n | rule | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    quoted = set()
    waiting = [c for c in items if c["verdict"] == PENDING]
    for c in (c for c in items if c["verdict"] != PENDING):
        digits = 4 if "SSIM" in c["what"] else 2
        interval = (
            "" if c["low"] is None else f"{_num(c['low'], digits)} .. {_num(c['high'], digits)}"
        )
        claim = f"{c['section']}" if c["claim"] in quoted else f'"{c["quote"]}" ({c["section"]})'
        quoted.add(c["claim"])
        verdict_ = c["verdict"] + (f": {c['reason']}" if c["reason"] else "")
        measured = f"{c['measured']:.2f}x" if c.get("ratio") else _num(c["measured"], digits)
        lines.append(
            f"| {claim} | {c['what']} | {measured} | {interval} | "
            f"{_count(c)} | {c['rule']} | {verdict_} |"
        )
    counts = {v: sum(c["verdict"] == v for c in items) for v in (HOLDS, CONTRADICTED, OPEN)}
    lines += ["", ", ".join(f"{n} {v}" for v, n in counts.items()) + "."]
    if waiting:
        lines += [
            "",
            f"Not run yet: {len(waiting)} comparisons of the plan wait for their steps.",
            "",
            "| claim (section) | comparison | waits for |",
            "| --- | --- | --- |",
        ]
        quoted = set()
        for c in waiting:
            claim = c["section"] if c["claim"] in quoted else f'"{c["quote"]}" ({c["section"]})'
            quoted.add(c["claim"])
            steps = c["reason"].removeprefix("waits for ")
            lines.append(f"| {claim} | {c['what']} | {steps} |")
    return "\n".join(lines) + "\n"


def rounded(data, digits=10):
    """`data` with its floats to `digits` significant digits: the committed claims.json then
    stays the same when another machine's BLAS moves an interval's last digits (~1e-14)."""
    if isinstance(data, float):
        return float(f"{data:.{digits}g}")
    if isinstance(data, dict):
        return {k: rounded(v, digits) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [rounded(v, digits) for v in data]
    return data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", required=True)
    parser.add_argument(
        "--scale",
        choices=("tiny", "small", "paper"),
        help="the run's scale: also list what its plan will check that has not run yet",
    )
    parser.add_argument("--points", help="the run's operating points, where not the scale's")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.run_dir):
        sys.exit(f"error: run folder {args.run_dir!r} does not exist")
    points = args.points.split(",") if args.points else None
    items = check(args.run_dir, args.scale, points)
    text = markdown(items, args.run_dir)
    with open(os.path.join(args.run_dir, "claims.md"), "w") as f:
        f.write(text)
    io.write_json(rounded(items), os.path.join(args.run_dir, "claims.json"))
    print(text)


if __name__ == "__main__":
    main()
