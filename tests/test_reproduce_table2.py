"""The Table 2 driver (sequencing, skip-and-resume, failures, presets) and tools/table2.py, with
the experiments replaced by tests/fake_python.py so the whole grid runs in seconds."""

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = os.path.join(ROOT, "tests", "fake_python.py")


def drive(tmp_path, *args, fail=None, jobs=2, env=None):
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    fake.chmod(0o755)
    env = dict(os.environ, **(env or {}))
    env.update(PY=str(fake), FAKE_LOG=str(tmp_path / "calls.log"), JOBS=str(jobs))
    env["DRIVER_PY"] = sys.executable
    if fail:
        env["FAKE_FAIL"] = fail
    return subprocess.run(
        ["bash", "tools/reproduce_table2.sh", *args, f"--out={tmp_path / 'run'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def calls(tmp_path):
    path = tmp_path / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("jobs", [1, 2])
def test_tiny_grid_runs_every_step_once_and_resumes_after_a_failure(tmp_path, jobs):
    # A failure in the middle stops the driver with the step's name and a non-zero status.
    first = drive(tmp_path, "--scale=tiny", fail="bpp0.330/cresnet39", jobs=jobs)
    assert first.returncode == 1 and "FAILED: cls/bpp0.330/cresnet39" in first.stderr
    # The failed step's seconds are not recorded as a finished step's.
    assert "cls/bpp0.330/cresnet39" not in json.loads(
        (tmp_path / "run" / "timing.json").read_text()
    )
    done_before = len(calls(tmp_path))
    second = drive(tmp_path, "--scale=tiny", jobs=jobs)
    assert second.returncode == 0, second.stderr
    lines = [line for line in second.stdout.splitlines() if line.startswith("==> [")]
    steps = [line for line in lines if "] [" in line and "/" in line.split("] [")[1][:6]]
    total = int(steps[0].split("/")[1].split("]")[0])
    # 41 trainings and evaluations (rate-distortion: the baselines once, each codec on its
    # own), 5 stores (one per codec: at tiny scale classifiers and segmenters share it).
    assert len(steps) == total == 46  # every step announced once, numbered k/N
    kept = [line for line in steps if "done before, kept" in line]
    assert len(kept) == done_before - 1  # what finished before the failure was not redone
    experiments = [c for c in calls(tmp_path)]
    assert len(experiments) == done_before + total - len(kept)
    # Each step's wall and CPU time, kept across the resume (the first run's steps too).
    timing = json.loads((tmp_path / "run" / "timing.json").read_text())
    assert len(timing) == len(experiments) - 1  # every step but the failed one
    assert all(t["cpu_s"] >= 0 and t["wall_s"] > 0 for t in timing.values())
    assert "CPU time of the steps" in second.stdout
    # A third run redoes nothing.
    third = drive(tmp_path, "--scale=tiny", jobs=jobs)
    assert third.returncode == 0 and len(calls(tmp_path)) == len(experiments)
    assert third.stdout.count("done before, kept") == total

    run = tmp_path / "run"
    rows = list(csv.DictReader(open(run / "table2.csv")))
    # 1 original + 3 per point + ResNet-71 / cResNet-72 at 0.0983.
    assert len(rows) == 1 + 3 * 3 + 2
    by_key = {(r["point"], r["network"]): r for r in rows}
    c51 = by_key[("bpp0.0983", "cResNet-51")]
    # Measured values are the result.json numbers in percent; the paper's are Table 2's.
    assert float(c51["top5"]) == pytest.approx(100 * score(str(run / "cls/bpp0.0983/cresnet51")))
    assert float(c51["paper_top5"]) == 78.20 and float(c51["paper_miou"]) == 54.62
    assert float(by_key[("original", "ResNet-50")]["paper_top1"]) == 71.06
    # Every codec's rate, each from its own rate-distortion step (merged by tools/table2.py).
    assert {r["bpp_measured"] for r in rows if r["point"] != "original"} == {"0.1"}
    table = (run / "table2.md").read_text()
    assert "| bpp0.0983 | joint ft. |" in table
    assert table.startswith("# Table 2 (tiny scale, run run)") and str(tmp_path) not in table
    # Section 6.1's control: a cResNet-51 from scratch on the finetuned codec, then more epochs
    # with that codec fixed, starting from the scratch classifier; joint from the trained pair.
    joint_dir = run / "joint" / "bpp0.0983"
    by_dir = {  # model folders like run/cls/../joint/... normalised
        os.path.normpath(line.split()[1]): os.path.normpath(line)
        for line in calls(tmp_path)
        if len(line.split()) > 1
    }
    scratch = by_dir[str(joint_dir / "control_scratch")]
    assert f"codec={joint_dir / 'codec_ft' / 'codec.keras'}" in scratch
    control = by_dir[str(joint_dir / "control")]
    assert "mode=classifier_only" in control
    assert f"codec={joint_dir / 'codec_ft' / 'codec.keras'}" in control
    assert f"classifier={joint_dir / 'control_scratch' / 'classifier.keras'}" in control
    joint = by_dir[str(joint_dir / "joint")]
    assert f"classifier={run / 'cls' / 'bpp0.0983' / 'cresnet51' / 'classifier.keras'}" in joint
    assert f"codec={run / 'codec_bpp0.0983' / 'codec.keras'}" in joint
    joint_rows = list(csv.DictReader(open(run / "table2_joint.csv")))
    assert [r["training"] for r in joint_rows] == ["baseline", "codec ft.", "joint ft."]
    # The codecs' rates from the joint rate-distortion step (baseline, codec ft., joint ft.).
    assert [float(r["bpp_real"]) for r in joint_rows] == pytest.approx([0.1, 0.2, 0.3])
    for name in (
        "fig3_classification_curves.png",
        "fig4_segmentation_curves.png",
        "fig5_segmentation.png",
        "fig6_accuracy_vs_flops.png",
        "fig7_joint_training.png",
        "fig8_rate_distortion.png",
        "fig11_joint_rate_distortion.png",
        "fig12_runtime.png",
    ):
        assert (run / "figures" / name).stat().st_size > 0, name


def test_seeded_rows_train_each_seed_and_report_mean_and_interval(tmp_path):
    """--seeds=3: the 0.0983 bpp classifiers and segmenters and the whole joint chain train with
    seeds 0, 1, 2 (NAME, NAME.seed1, NAME.seed2, each from its own seed's classifier); other
    points keep one seed; the tables give each seeded row's mean and 95% interval."""
    result = drive(tmp_path, "--scale=tiny", "--points=bpp0.0983,bpp0.635", "--seeds=3")
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    by_dir = {os.path.normpath(c.split()[1]): c for c in calls(tmp_path) if len(c.split()) > 1}
    for seed, suffix in ((1, ".seed1"), (2, ".seed2")):
        c51 = run / "cls" / "bpp0.0983" / f"cresnet51{suffix}"
        assert f"seed={seed}" in by_dir[str(c51)]
        seg = by_dir[str(run / "seg" / "bpp0.0983" / f"cresnet51_d{suffix}")]
        assert f"init_classifier={c51 / 'classifier.keras'}" in seg and f"seed={seed}" in seg
        joint = by_dir[str(run / "joint" / f"bpp0.0983{suffix}" / "joint")]
        assert f"classifier={c51 / 'classifier.keras'}" in joint and f"seed={seed}" in joint
        control = by_dir[str(run / "joint" / f"bpp0.0983{suffix}" / "control")]
        scratch = run / "joint" / f"bpp0.0983{suffix}" / "control_scratch"
        assert f"classifier={scratch / 'classifier.keras'}" in control
        # The RGB baseline is the 0.0983 bpp rows' "ResNet-50 original": it has their seeds.
        rgb = run / "cls" / "rgb" / f"resnet50{suffix}"
        assert f"seed={seed}" in by_dir[str(rgb)]
        seg = by_dir[str(run / "seg" / "rgb" / f"resnet50_d{suffix}")]
        assert f"init_classifier={rgb / 'classifier.keras'}" in seg and f"seed={seed}" in seg
    assert not (run / "cls" / "bpp0.635" / "cresnet51.seed1").exists()
    rows = {(r["point"], r["network"]): r for r in csv.DictReader(open(run / "table2.csv"))}
    c51 = rows[("bpp0.0983", "cResNet-51")]
    top1 = [100 * score(str(run / "cls/bpp0.0983" / f"cresnet51{s}")) / 2 for s in SUFFIXES]
    sd = float(np.std(top1, ddof=1))
    assert float(c51["top1"]) == pytest.approx(np.mean(top1))
    # 95% Student-t half-width with 2 degrees of freedom: 4.3027 s / sqrt(3).
    assert float(c51["top1_ci95"]) == pytest.approx(4.302653 * sd / np.sqrt(3), rel=1e-5)
    assert (c51["seeds"], c51["seg_seeds"]) == ("3", "3")
    original = rows[("original", "ResNet-50")]
    assert (original["seeds"], original["seg_seeds"]) == ("3", "3")
    single = rows[("bpp0.635", "cResNet-51")]
    assert single["seeds"] == "1" and single["top1_ci95_pooled"] == "True"
    assert (
        f"{float(c51['top1']):.2f} ± {float(c51['top1_ci95']):.2f}"
        in (run / "table2.md").read_text()
    )
    joint = {r["training"]: r for r in csv.DictReader(open(run / "table2_joint.csv"))}
    scores = [100 * score(str(run / "joint" / f"bpp0.0983{s}" / "joint")) / 2 for s in SUFFIXES]
    assert float(joint["joint ft."]["top1"]) == pytest.approx(np.mean(scores))
    assert joint["joint ft."]["seeds"] == "3"

    # tools/claims.py, run by the driver: Welch's interval over the two rows' seeds ...
    claims = json.loads((run / "claims.json").read_text())
    by_what = {c["what"]: c for c in claims}
    z = by_what["bpp0.0983: top-1, cResNet-51 on z - ResNet-50 on reconstructions"]
    top1_r50 = [100 * score(str(run / "cls/bpp0.0983" / f"resnet50{s}")) / 2 for s in SUFFIXES]
    welch = scipy_stats.ttest_ind(top1, top1_r50, equal_var=False).confidence_interval()
    assert (z["low"], z["high"]) == pytest.approx((welch.low, welch.high))
    assert z["seeds"] == 3 and z["verdict"] in ("holds", "contradicted", "not resolved")
    # ... a one-seed row borrows the spread pooled over the six 3-seed top-1 rows (the five at
    # 0.0983 bpp and the RGB baseline: 12 degrees of freedom, which two one-seed rows share)
    # ...
    folders = [f"cls/bpp0.0983/{n}" for n in ("resnet50", "cresnet51", "cresnet39", "resnet71")]
    folders += ["cls/bpp0.0983/cresnet72", "cls/rgb/resnet50"]
    variances = [
        np.var([100 * score(str(run / f"{folder}{s}")) / 2 for s in SUFFIXES], ddof=1)
        for folder in folders
    ]
    # The one-seed row's own interval in the table: t(0.975, 12) * the pooled spread.
    pooled = float(np.sqrt(np.mean(variances)))
    assert float(single["top1_ci95"]) == pytest.approx(scipy_stats.t.ppf(0.975, 12) * pooled)
    assert f"{float(single['top1_ci95']):.2f}*" in (run / "table2.md").read_text()
    high = by_what["bpp0.635: top-1, cResNet-51 on z - ResNet-50 on reconstructions"]
    half = scipy_stats.t.ppf(0.975, 12) * np.sqrt(2 * np.mean(variances))
    assert high["high"] - high["measured"] == pytest.approx(half)
    assert "pooled" in high["reason"]
    # ... rate-distortion against the baseline's curve at the codec's real bpp (0.1 here: the
    # JPEG line from (0.05, 0.4) to (1.0, 0.9) gives SSIM 0.4 + 0.5 * 0.05 / 0.95) ...
    rd = by_what["codec_bpp0.0983 (0.100 bpp): SSIM - jpeg"]
    assert rd["measured"] == pytest.approx(0.5 - (0.4 + 0.5 * 0.05 / 0.95))
    assert rd["verdict"] == "holds"
    assert rd["reason"] == (
        "mean over ? images; baseline interpolated; no interval: the codec's evaluation has no "
        "per-image records"
    )
    # ... and operation counts: the fake's MACs are (decoder 2 + ResNet-50 4) / cResNet-51 7.
    flops = by_what["MACs of decoder + ResNet-50 / cResNet-51 (224 px input)"]
    assert flops["measured"] == pytest.approx(6 / 7) and flops["verdict"] == "contradicted"


SUFFIXES = ("", ".seed1", ".seed2")


def score(text):
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from fake_python import score as fake_score

    return fake_score(text)


def test_only_runs_the_matching_steps_and_what_they_need(tmp_path):
    result = drive(tmp_path, "--scale=tiny", "--only=cls/bpp0.0983/cresnet51,flops")
    assert result.returncode == 0, result.stderr
    ran = sorted(
        " ".join(c.split(" ")[:1] + [os.path.basename(c.split(" ")[1])]) for c in calls(tmp_path)
    )
    assert ran == [
        "experiments.count_flops ",
        "experiments.encode_dataset ",  # the store it reads, from ...
        "experiments.train_classifier cresnet51",
        "experiments.train_compression codec_bpp0.0983",  # ... the codec it needs
    ]
    # The claims of a partial run: what it measured is judged, and every other comparison of
    # the scale's plan waits, naming the unfinished steps it needs (cResNet-51 finished).
    claims = json.loads((tmp_path / "run" / "claims.json").read_text())
    waiting = {c["what"]: c["reason"] for c in claims if c["verdict"] == "not run yet"}
    z = "{}: top-1, cResNet-51 on z - ResNet-50 on reconstructions"
    assert waiting[z.format("bpp0.0983")] == "waits for cls/bpp0.0983/resnet50"
    assert waiting[z.format("bpp0.635")] == (
        "waits for cls/bpp0.635/cresnet51, cls/bpp0.635/resnet50"
    )
    seg = "bpp0.330: mIoU, cResNet-51-d on z - ResNet-50-d on reconstructions"
    assert waiting[seg] == "waits for seg/bpp0.330/cresnet51_d, seg/bpp0.330/resnet50_d"
    rd = "codec_bpp0.0983: SSIM and MS-SSIM - jpeg, jpeg2000"
    assert waiting[rd] == "waits for rate_distortion/bpp0.0983, rate_distortion/baselines"
    joint = "bpp0.0983: top-1, mIoU, SSIM, MS-SSIM, joint ft. - codec ft. (the control)"
    assert waiting[joint].startswith("waits for joint/bpp0.0983/")
    # ResNet-71 / cResNet-72, Table 2's other pair of equal cost, at 0.0983 bpp only.
    pair = "bpp0.0983: {}, cResNet-72{} on z - ResNet-71{} on reconstructions"
    assert waiting[pair.format("top-1", "", "")] == (
        "waits for cls/bpp0.0983/cresnet72, cls/bpp0.0983/resnet71"
    )
    assert waiting[pair.format("mIoU", "-d", "-d")] == (
        "waits for seg/bpp0.0983/cresnet72_d, seg/bpp0.0983/resnet71_d"
    )
    # 3 points x (z vs reconstructed, segmentation, rate-distortion), the 71 / 72 pair x 2,
    # cResNet-39, joint; the tiny plan has no rate-distortion on a second set.
    assert len(waiting) == 13
    flops = [c for c in claims if c["claim"] == "flops"]
    assert len(flops) == 2 and all(c["verdict"] != "not run yet" for c in flops)
    text = (tmp_path / "run" / "claims.md").read_text()
    assert "Not run yet: 13 comparisons of the plan wait for their steps." in text
    # Without the run's scale the tool judges the points it finds rows at (a row missing:
    # not resolved) and lists nothing as waiting.
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from claims import check

    found = {c["what"]: c["verdict"] for c in check(str(tmp_path / "run"))}
    assert found[z.format("bpp0.0983")] == "not resolved" and z.format("bpp0.635") not in found
    assert "not run yet" not in found.values()
    refused = drive(tmp_path, "--scale=tiny", "--only=nonesuch/*")
    assert refused.returncode == 2 and "no step of the plan matches" in refused.stderr


def test_a_run_continues_on_a_new_machine_from_its_collected_results(tmp_path):
    """Results collected into the repository come back into a new run folder (--restore); every
    finished row is kept, and so is the codec whose model was lost while no step reads it; a
    step that reads the codec trains it again, with its store, and a network whose weights a
    step starts from trains again on the new codec, the old one set aside; a row left from the
    old codec is not compared with a row of one seed on the new one."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    only = "--only=cls/bpp0.0983/cresnet51,cls/bpp0.0983/resnet50,cls/rgb/resnet50"
    assert drive(first, "--scale=tiny", only).returncode == 0
    tool = os.path.join(ROOT, "tools", "collect_results.py")
    results = tmp_path / "results"
    assert subprocess.run([sys.executable, tool, str(first / "run"), str(results)]).returncode == 0
    run = second / "run"
    restore = [sys.executable, tool, "--restore", str(results), str(run)]
    assert subprocess.run(restore).returncode == 0
    assert (run / "cls/bpp0.0983/cresnet51/result.json").exists()
    assert not (run / "codec_bpp0.0983" / "codec.keras").exists()  # models stay out of git
    result = drive(second, "--scale=tiny", "--only=cls/bpp0.0983/cresnet51,cls/rgb/resnet50")
    assert result.returncode == 0, result.stderr
    assert calls(second) == []  # the rows are draws on the old codec: nothing to train
    assert "cls/bpp0.0983/cresnet51: done before, kept" in result.stdout
    assert "codec_bpp0.0983: done before, kept" in result.stdout
    assert "codec.keras not on this machine, and no step run now reads it" in result.stdout
    # A segmenter starts from cResNet-51's weights (lost): the codec, its stores and cResNet-51
    # train again, so that the segmenter's backbone and z come from one codec.
    result = drive(second, "--scale=tiny", "--only=seg/bpp0.0983/cresnet51_d")
    assert result.returncode == 0, result.stderr
    ran = sorted(c.split(" ")[0] for c in calls(second))
    assert ran == [
        "experiments.encode_dataset",
        "experiments.train_classifier",  # cResNet-51 only: the RGB ResNet-50 is not read
        "experiments.train_compression",
        "experiments.train_segmentation",
    ]
    assert "codec_bpp0.0983: its result came back without codec.keras" in result.stdout
    assert (run / "codec_bpp0.0983.stale" / "result.json").exists()
    assert "cls/bpp0.0983/cresnet51: done before, but a step it needs runs again" in result.stdout
    stale = run / "cls/bpp0.0983/cresnet51.stale/result.json"
    new = run / "cls/bpp0.0983/cresnet51/result.json"
    new_id = json.loads(new.read_text())["models"]["classifier"]["codec_model_id"]
    old_id = json.loads(stale.read_text())["models"]["classifier"]["codec_model_id"]
    assert new_id == (run / "codec_bpp0.0983" / "codec.keras").read_text() != old_id
    # What was set aside is not collected again.
    again = tmp_path / "results2"
    assert subprocess.run([sys.executable, tool, str(run), str(again)]).returncode == 0
    assert (again / "cls/bpp0.0983/cresnet51/result.json").exists()
    assert not list(again.rglob("*.stale*"))
    # Timing of the first machine's steps is kept beside the second's.
    timing = json.loads((run / "timing.json").read_text())
    assert {"cls/rgb/resnet50", "codec_bpp0.0983"} <= set(timing)
    # The RGB network's row was kept, its weights were not: a segmenter that starts from them
    # trains it again first.
    result = drive(second, "--scale=tiny", "--only=seg/rgb/resnet50_d")
    assert result.returncode == 0, result.stderr
    assert "cls/rgb/resnet50: done before, but its classifier.keras is missing" in result.stdout
    assert (run / "cls/rgb/resnet50/classifier.keras").exists()
    assert (run / "seg/rgb/resnet50_d/result.json").exists()
    # ResNet-50 on reconstructions came back from the old codec: the claim that compares it
    # with the new cResNet-51 (one seed each) names both codecs instead of judging.
    claims = {c["what"]: c for c in json.loads((run / "claims.json").read_text())}
    z = claims["bpp0.0983: top-1, cResNet-51 on z - ResNet-50 on reconstructions"]
    assert z["verdict"] == "not resolved" and "different codecs" in z["reason"]
    assert new_id in z["reason"] and old_id in z["reason"]
    # A run whose rows share one codec judges them (here: no spread, one seed each).
    claims = {c["what"]: c for c in json.loads((first / "run" / "claims.json").read_text())}
    z = claims["bpp0.0983: top-1, cResNet-51 on z - ResNet-50 on reconstructions"]
    assert "different codecs" not in z["reason"]


def test_a_finished_joint_chain_is_kept_on_a_new_machine(tmp_path):
    """On a new machine a codec trains again for a row that reads it; a chain of joint training
    whose every step came back is kept (its claims pair its own joint and control), where one
    step short it trains again as a whole, from the new codec."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    assert drive(first, "--scale=tiny", "--only=*joint/bpp0.0983/*").returncode == 0
    tool = os.path.join(ROOT, "tools", "collect_results.py")
    results = tmp_path / "results"
    assert subprocess.run([sys.executable, tool, str(first / "run"), str(results)]).returncode == 0
    restore = [sys.executable, tool, "--restore", str(results), str(second / "run")]
    assert subprocess.run(restore).returncode == 0

    def plan():
        only = "--only=*joint/bpp0.0983/*,cls/bpp0.0983/resnet50"
        result = drive(second, "--scale=tiny", "--plan", only)
        assert result.returncode == 0, result.stderr
        lines = [line.split("] ", 1)[1] for line in result.stdout.splitlines() if "] " in line]
        return dict(line.split(": ", 1) for line in lines)

    lines = plan()
    assert lines["codec_bpp0.0983"].startswith("redone: its model is not on this machine")
    chain = [n for n in lines if "joint/bpp0.0983/" in n and not n.startswith("store/")]
    assert len(chain) == 7 and all(lines[n] == "done" for n in chain), lines
    assert lines["cls/bpp0.0983/cresnet51"] == "done"  # the chain starts from it: kept too
    (second / "run" / "joint" / "bpp0.0983" / "control" / "result.json").unlink()
    lines = plan()
    assert lines["joint/bpp0.0983/joint"].startswith("redone: a step it needs runs again")
    assert lines["joint/bpp0.0983/control"].startswith("to run")


def test_a_figure_never_makes_the_networks_it_shows_train_again(tmp_path):
    """Fig. 5 reads seven segmenters' saved panels (committed with their results) or their
    weights: on a new machine (results restored, models gone) it is drawn from the panels; where
    a segmenter has neither (trained before the panels existed) it is skipped, naming what is
    missing, instead of training them and the classifiers and codecs under them again."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    assert drive(first, "--scale=tiny", "--only=fig5").returncode == 0
    figure = "figures/fig5_segmentation.png"
    assert (first / "run" / figure).exists()
    tool = os.path.join(ROOT, "tools", "collect_results.py")
    results = tmp_path / "results"
    assert subprocess.run([sys.executable, tool, str(first / "run"), str(results)]).returncode == 0
    assert len(list(results.glob("seg/**/examples/examples.json"))) == 7
    assert not list(results.glob("**/*.keras"))
    restore = [sys.executable, tool, "--restore", str(results), str(second / "run")]
    assert subprocess.run(restore).returncode == 0
    (second / "run" / figure).unlink(missing_ok=True)
    result = drive(second, "--scale=tiny", "--only=fig5")
    assert result.returncode == 0, result.stderr
    assert [c.split()[0] for c in calls(second)] == ["experiments.eval_segmentation"]
    assert "seg/bpp0.0983/cresnet51_d: done before, kept" in result.stdout
    assert (second / "run" / figure).exists()
    for panels in (second / "run").glob("seg/**/examples"):
        shutil.rmtree(panels)
    (second / "run" / figure).unlink()
    (second / "calls.log").unlink()
    result = drive(second, "--scale=tiny", "--only=fig5")
    assert result.returncode == 0, result.stderr
    assert calls(second) == []
    assert "fig5: skipped, as 7 model file(s) it reads" in result.stdout
    assert not (second / "run" / figure).exists()


def test_a_kept_step_trained_under_other_settings_is_named(tmp_path):
    """A preset changed after a step trained: the driver keeps the step's row but says which
    fields its recorded config has that its command no longer gives."""
    from tfcomp import configs

    assert drive(tmp_path, "--scale=tiny", "--only=cls/rgb/resnet50").returncode == 0
    path = tmp_path / "run" / "cls" / "rgb" / "resnet50" / "result.json"
    result = json.loads(path.read_text())
    now = configs.get("classifier", "tiny", arch="resnet50", input_mode="rgb")
    # What is measured while training (the curve's settings) is not the model: no warning.
    for config, warned in (
        (now, False),
        (dataclasses.replace(now, curve_every_epochs=7.0), False),
        (dataclasses.replace(now, epochs=99), True),
    ):
        result["config"] = configs.to_dict(config)
        path.write_text(json.dumps(result))
        again = drive(tmp_path, "--scale=tiny", "--only=cls/rgb/resnet50")
        assert again.returncode == 0 and "cls/rgb/resnet50: done before, kept" in again.stdout
        warning = "cls/rgb/resnet50 trained under other settings than its command gives now "
        warning += f"(epochs 99 -> {now.epochs})"
        assert (warning in again.stdout) is warned, again.stdout
    assert json.loads(path.read_text())["config"]["fields"]["epochs"] == 99  # kept as it was


def test_joint_rate_settings_taken_from_the_codec_are_no_drift(tmp_path):
    # The command gives no beta / H_t; the trainer records its codec's (A.8's 600 / 0.8).
    from tfcomp import configs

    only = "--only=joint/bpp0.0983/joint"
    assert drive(tmp_path, "--scale=tiny", only).returncode == 0
    path = tmp_path / "run" / "joint" / "bpp0.0983" / "joint" / "result.json"
    result = json.loads(path.read_text())
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from reproduce_table2 import scale_plan

    from flags.config import config_of_command

    step = next(s for s in scale_plan("tiny", str(tmp_path / "run")).steps if s.name in only)
    recorded = config_of_command("joint", step.argv[2:])
    assert (recorded.beta, recorded.target_entropy) == (None, None)
    for changes, warned in ((dict(beta=600.0, target_entropy=0.8), False), (dict(gamma=0.5), True)):
        result["config"] = configs.to_dict(dataclasses.replace(recorded, **changes))
        path.write_text(json.dumps(result))
        again = drive(tmp_path, "--scale=tiny", only)
        assert again.returncode == 0 and "done before, kept" in again.stdout
        assert ("joint/bpp0.0983/joint trained under other settings" in again.stdout) is warned, (
            again.stdout
        )


def test_a_collected_run_is_checked_for_older_settings_wherever_it_lies(tmp_path):
    """reproduce_table2.kept_drift (the README's steps table): a run folder moved elsewhere, as
    collect_results copies one into results/, is not taken for changed, though its configs name
    the folders it trained in; a field changed since is named; a codec step's config is read
    from its folder's result.json (the step's result file is codec.keras)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from reproduce_table2 import kept_drift, same_setting

    from tfcomp import configs

    roots = ["/b/run", "/data"]
    assert same_setting("store:/a/old/stores/x/c", "store:/b/run/stores/x/c", roots)
    assert same_setting("folder:/d/imagenette2", "folder:/data/imagenette2", roots)
    assert not same_setting("folder:/d/imagenette2", "folder:/data/kodak", roots)
    assert not same_setting("store:/a/stores/y/c", "store:/b/run/stores/x/c", roots)
    assert not same_setting("/a/x/codec.keras", "/c/x/codec.keras", roots)  # outside the roots
    assert same_setting(30, 30, roots) and not same_setting(30, 20, roots)

    only = "--only=cls/rgb/resnet50,codec_bpp0.0983"
    assert drive(tmp_path, "--scale=tiny", only).returncode == 0
    now = {
        "cls/rgb/resnet50": configs.get("classifier", "tiny", arch="resnet50", input_mode="rgb"),
        "codec_bpp0.0983": configs.get("codec", "tiny", operating_point="bpp0.0983"),
    }
    for folder, config in now.items():
        path = tmp_path / "run" / folder / "result.json"
        result = json.loads(path.read_text())
        path.write_text(json.dumps({**result, "config": configs.to_dict(config)}))
    again = drive(tmp_path, "--scale=tiny", only)
    assert again.returncode == 0 and "warning" not in again.stdout, again.stdout
    moved = tmp_path / "results" / "table2_tiny"
    moved.parent.mkdir()
    (tmp_path / "run").rename(moved)
    assert kept_drift(str(moved), "tiny") == {}
    path = moved / "cls" / "rgb" / "resnet50" / "result.json"
    result = json.loads(path.read_text())
    result["config"]["fields"]["epochs"] = 99
    path.write_text(json.dumps(result))
    epochs = now["cls/rgb/resnet50"].epochs
    assert kept_drift(str(moved), "tiny") == {"cls/rgb/resnet50": [f"epochs 99 -> {epochs}"]}


def test_claim_verdicts_follow_their_rules():
    """tools/claims.py: greater / not worse / equivalent against the 95% interval."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from claims import verdict

    from tfcomp.eval.stats import Estimate

    def e(low, high):
        return Estimate((low + high) / 2, (high - low) / 2, 3)

    assert verdict(e(0.1, 2), "greater")[0] == "holds"
    assert verdict(e(-2, -0.1), "greater")[0] == "contradicted"
    assert verdict(e(-1, 1), "greater")[0] == "not resolved"
    assert verdict(e(-1.5, 1), "not worse", 2)[0] == "holds"
    assert verdict(e(-4, -2.5), "not worse", 2)[0] == "contradicted"
    assert verdict(e(-1.5, 1.5), "equivalent", 2)[0] == "holds"
    assert verdict(e(2.5, 5), "equivalent", 2)[0] == "contradicted"
    assert verdict(e(1, 3), "equivalent", 2)[0] == "not resolved"
    one_seed = Estimate(1.0, None, 1)
    assert verdict(one_seed, "greater") == (
        "not resolved",
        "one seed per row and no rows with several seeds to estimate the spread",
    )
    assert verdict(None, "greater")[0] == "not resolved"


def test_rows_on_retrained_codecs_are_compared_when_each_seed_has_its_own(tmp_path):
    """tools/claims.py: a codec trained again (a new machine) is another draw of its training.
    Two rows whose every seed (2 or more) has a codec of its own are compared over their own
    seeds (Welch, checked against scipy); rows whose seeds share codecs that both rows have are
    compared within each codec; seeds sharing a codec, or a row of one seed, on other codecs
    than the other row are not judged, naming the codecs."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from claims import check

    from tfcomp.eval import stats

    def write(net, top1, codecs):
        for seed, (acc, codec) in enumerate(zip(top1, codecs)):
            folder = tmp_path / "cls" / "bpp0.0983" / (net + (f".seed{seed}" if seed else ""))
            folder.mkdir(parents=True, exist_ok=True)
            result = {
                "metrics": {"top1": acc, "top5": 0.9},
                "models": {"classifier": {"codec_model_id": codec}},
            }
            (folder / "result.json").write_text(json.dumps(result))

    def claim():
        for c in check(str(tmp_path)):
            if c["what"] == "bpp0.0983: top-1, cResNet-51 on z - ResNet-50 on reconstructions":
                return c

    z, recon = [0.70, 0.72, 0.69], [0.74, 0.75]
    write("cresnet51", z, ["a", "b", "c"])
    write("resnet50", recon, ["d", "a"])  # one codec shared with the other row: allowed
    c = claim()
    assert "different codecs" not in c["reason"]
    a, b = 100 * np.array(z), 100 * np.array(recon)
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 2
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 1)
    half = scipy_stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    assert c["measured"] == pytest.approx(a.mean() - b.mean())
    assert (c["low"], c["high"]) == pytest.approx(
        (a.mean() - b.mean() - half, a.mean() - b.mean() + half)
    )
    # Seeds sharing codecs that both rows have: compared within each codec (tests/test_stats).
    write("cresnet51", z, ["a", "b", "b"])
    write("resnet50", recon, ["a", "b"])
    c = claim()
    expected = stats.blocked_difference(
        [(70.0, "a"), (72.0, "b"), (69.0, "b")], [(74.0, "a"), (75.0, "b")]
    )
    assert c["measured"] == pytest.approx(expected.mean)
    assert c["high"] - c["low"] == pytest.approx(2 * expected.half_width)
    assert "the codec a block" in c["reason"]
    # One seed of each row on the shared codec: the fit leaves no residual, so the difference
    # borrows the spread pooled over the rows with several seeds (ResNet-50's two: 74, 75), a
    # one-seed pair's variance 2 sd^2 (the seed on codec b only fixes codec b's effect).
    write("cresnet51", z[:1], ["a"])
    for seed in (1, 2):
        (tmp_path / "cls" / "bpp0.0983" / f"cresnet51.seed{seed}" / "result.json").unlink()
    c = claim()
    half = scipy_stats.t.ppf(0.975, 1) * np.std([74.0, 75.0], ddof=1) * np.sqrt(2)
    assert c["measured"] == pytest.approx(70.0 - 74.0)
    assert (c["low"], c["high"]) == pytest.approx((-4.0 - half, -4.0 + half))
    assert "the codec a block" in c["reason"] and "pooled from the rows" in c["reason"]
    write("cresnet51", z, ["a", "b", "c"])
    # Two seeds of ResNet-50 on one codec, other than cResNet-51's: the rows' spread misses
    # the codecs' variation.
    write("resnet50", recon, ["d", "d"])
    c = claim()
    assert c["verdict"] == "not resolved" and c["reason"].startswith("the rows were trained on")
    assert (
        "1 codec (d) for 2 seeds" in c["reason"] and "3 codecs (a/b/c) for 3 seeds" in c["reason"]
    )
    # Both rows on one and the same codec: compared as before.
    write("cresnet51", z[:2], ["d", "d"])
    (tmp_path / "cls" / "bpp0.0983" / "cresnet51.seed2" / "result.json").unlink()
    c = claim()
    assert "different codecs" not in c["reason"] and c["reason"].startswith("the 95% interval")
    # One seed on another codec: not judged.
    write("cresnet51", z[:1], ["e"])
    (tmp_path / "cls" / "bpp0.0983" / "cresnet51.seed1" / "result.json").unlink()
    assert "1 codec (e) for 1 seed vs" in claim()["reason"]


def test_joint_rows_of_seeds_whose_seed_0_never_ran(tmp_path):
    # joint/P.seed1 and .seed2 without joint/P: the point's rows are the mean of those seeds.
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import table2

    for seed, (joint, control) in (("1", (0.74, 0.70)), ("2", (0.76, 0.71))):
        for name, top1 in (("joint", joint), ("control", control)):
            folder = tmp_path / "joint" / f"bpp0.0983.seed{seed}" / name
            folder.mkdir(parents=True)
            (folder / "result.json").write_text(json.dumps({"metrics": {"top1": top1}}))
    rows = table2.joint_rows(str(tmp_path))
    assert list(rows) == ["bpp0.0983"]
    joint, control = rows["bpp0.0983"]["joint ft."], rows["bpp0.0983"]["codec ft."]
    assert (joint["top1"], joint["seeds"]) == (pytest.approx(75.0), 2)
    assert (control["top1"], control["seeds"]) == (pytest.approx(70.5), 2)
    assert rows["bpp0.0983"]["baseline"]["seeds"] == 0
    # The baseline is the cResNet-51 of the seeds finetuned (1, 2), not of every seed.
    for seed, top1 in enumerate((0.60, 0.70, 0.72)):
        folder = tmp_path / "cls" / "bpp0.0983" / ("cresnet51" + (f".seed{seed}" if seed else ""))
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({"metrics": {"top1": top1}}))
    baseline = table2.joint_rows(str(tmp_path))["bpp0.0983"]["baseline"]
    assert (baseline["top1"], baseline["seeds"]) == (pytest.approx(71.0), 2)


def test_joint_and_its_control_are_compared_within_each_seed(tmp_path):
    # Seeds 1 and 2 differ by 5 points; within each, joint - control is +1.0 and +1.2. Paired:
    # the mean difference 1.1 with t(1) x sd(differences) / sqrt(2) (closed form); seed 3's
    # joint without its control informs nothing.
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import claims
    import table2

    for seed, (joint, control) in {1: (0.710, 0.700), 2: (0.762, 0.750), 3: (0.9, None)}.items():
        for name, top1 in (("joint", joint), ("control", control)):
            if top1 is not None:
                folder = tmp_path / "joint" / f"bpp0.0983.seed{seed}" / name
                folder.mkdir(parents=True)
                (folder / "result.json").write_text(json.dumps({"metrics": {"top1": top1}}))
    rows = table2.joint_rows(str(tmp_path))["bpp0.0983"]
    pairs = table2.joint_pairs(str(tmp_path), "bpp0.0983")
    assert sorted(s for _, s in pairs["top1"][0]) == [1, 2, 3]
    joint, control = rows["joint ft."]["estimates"], rows["codec ft."]["estimates"]
    diff, note = claims.joint_difference(pairs, joint, control, "top1")
    differences = np.array([1.0, 1.2])
    half = scipy_stats.t.ppf(0.975, 1) * differences.std(ddof=1) / np.sqrt(2)
    assert diff.mean == pytest.approx(1.1) and diff.half_width == pytest.approx(half)
    assert note == "paired by seed (2 seeds with both)"
    # Unpaired, the seeds' 5-point spread would swamp it.
    welch = claims.stats.difference(joint["top1"], control["top1"])
    assert welch.half_width > 10 * half


def test_a_codec_outside_a_baselines_rates_is_judged_by_its_nearest_point():
    """tools/claims.py against_curve: inside the sweep the curve is interpolated; below its
    lowest rate a codec above the lowest point holds (that point spends more bits), above its
    highest rate a codec below the highest point is contradicted; otherwise not resolved."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from claims import against_curve

    curve = [{"bpp_real": 0.2, "ssim": 0.6}, {"bpp_real": 1.0, "ssim": 0.9}]
    value, holds, note = against_curve(0.7, 0.4, curve, "ssim")
    assert value == pytest.approx(0.7 - (0.6 + 0.3 * 0.2 / 0.8)) and holds
    assert note == "baseline interpolated"
    value, holds, note = against_curve(0.65, 0.08, curve, "ssim")  # fewer bits, higher SSIM
    assert value == pytest.approx(0.05) and holds and "0.200 bpp point" in note
    assert against_curve(0.55, 0.08, curve, "ssim")[:2] == (None, None)
    value, holds, _ = against_curve(0.85, 1.5, curve, "ssim")  # more bits, lower SSIM
    assert value == pytest.approx(-0.05) and holds is False
    value, holds, note = against_curve(0.95, 1.5, curve, "ssim")
    assert (value, holds) == (None, None) and "above the highest rate" in note


def test_codecs_are_judged_on_each_rate_distortion_set(tmp_path):
    """tools/claims.py: the codec against the baselines of rd/ (Kodak) and of rd_domain/ (the
    codecs' own data), each row naming its set; the interpolation as against_curve's."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from claims import check

    def write(folder, part, dataset, codecs, baselines):
        (tmp_path / folder / part).mkdir(parents=True)
        data = {"dataset": dataset, "codecs": codecs, "baselines": baselines}
        (tmp_path / folder / part / "rd.json").write_text(json.dumps(data))

    def sweep(ms_ssim):  # headers of 0.03 bpp
        rows = [(0.05, ms_ssim - 0.1), (0.2, ms_ssim + 0.1)]
        return [{"bpp_real": b, "bpp_payload": b - 0.03, "ssim": m, "ms_ssim": m} for b, m in rows]

    # The codec's header 0.005 bpp: at equal bytes after the headers (0.12 bpp) the baseline
    # is interpolated at 0.15 bpp real, 2/3 up its sweep.
    codec = {"mean": {"bpp_real": 0.125, "bpp_payload": 0.12, "ssim": 0.8, "ms_ssim": 0.8}}
    for folder, dataset, j2k in (
        ("rd", "folder:/d/kodak", 0.9),
        ("rd_domain", "folder:/d/imagenette2", 0.7),
    ):
        write(folder, "baselines", dataset, {}, {"jpeg2000": sweep(j2k)})
        write(folder, "bpp0.0983", dataset, {"codec_bpp0.0983": codec}, {})
    # An evaluation the driver set aside (NAME.stale: its codec lost, the step to run again)
    # is left out: no claims from a codec this run no longer has.
    write("rd", "bpp0.635.stale", "folder:/d/kodak", {"codec_bpp0.635": codec}, {})
    by_what = {c["what"]: c for c in check(str(tmp_path))}
    assert not [w for w in by_what if w.startswith("codec_bpp0.635")]
    kodak = by_what["codec_bpp0.0983 (0.125 bpp): MS-SSIM - jpeg2000"]
    domain = by_what["codec_bpp0.0983 on imagenette2 (0.125 bpp): MS-SSIM - jpeg2000"]
    assert kodak["measured"] == pytest.approx(-0.1) and kodak["verdict"] == "contradicted"
    assert domain["measured"] == pytest.approx(0.1) and domain["verdict"] == "holds"
    after = 0.8 - (0.7 - 0.1 + 0.2 * 2 / 3)
    assert domain["reason"] == (
        "mean over imagenette2 images; baseline interpolated; no interval: the codec's "
        "evaluation has no per-image records; at equal bytes after the headers (0.120 bpp): "
        f"{after:+.4f}"
    )


def test_a_codec_is_judged_image_by_image_against_each_image_s_own_baseline_curve(tmp_path):
    """tools/claims.py: where the codec and the baseline's points record each image, every
    image's codec point is set against that image's own curve at its own bpp and the verdict
    takes the paired 95% interval over images: a lead smaller than the images' spread is not
    resolved, a consistent one holds; a sweep without per-image records keeps the mean-curve
    verdict and says why it has no interval."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from claims import check

    # Each image's JPEG 2000 curve: SSIM 0.5 at 0.0 bpp rising by `slope` per bpp to 1.0 bpp.
    slopes = {"a": 0.2, "b": 0.4, "c": 0.3}

    def sweep(per_image=True):
        points = []
        for bpp in (0.0, 1.0):
            images = {}
            for n, k in slopes.items():
                images[n] = {"bpp_real": bpp, "ssim": 0.5 + k * bpp, "ms_ssim": 0.5 + k * bpp}
            point = {m: float(np.mean([r[m] for r in images.values()])) for m in images["a"]}
            points.append({**point, "images": images} if per_image else point)
        return points

    def judge(codec_ssim, per_image=True):
        # The codec's points: image n at bpp 0.5 (its curve's 0.5 + k / 2) plus its lead.
        images = {}
        for n, k in slopes.items():
            value = 0.5 + k / 2 + codec_ssim[n]
            images[n] = {"bpp_real": 0.5, "ssim": value, "ms_ssim": value}
        mean = {m: float(np.mean([r[m] for r in images.values()])) for m in images["a"]}
        for part, data in (
            (
                "baselines",
                {
                    "dataset": "folder:/d/kodak",
                    "codecs": {},
                    "baselines": {"jpeg2000": sweep(per_image)},
                },
            ),  # fmt: skip
            (
                "bpp0.0983",
                {
                    "dataset": "folder:/d/kodak",
                    "codecs": {"codec_bpp0.0983": {"mean": mean, "images": images}},
                    "baselines": {},
                },
            ),  # fmt: skip
        ):
            (tmp_path / "rd" / part).mkdir(parents=True, exist_ok=True)
            (tmp_path / "rd" / part / "rd.json").write_text(json.dumps(data))
        return {c["what"]: c for c in check(str(tmp_path))}[
            "codec_bpp0.0983 (0.500 bpp): SSIM - jpeg2000"
        ]

    leads = {"a": 0.02, "b": 0.03, "c": 0.025}  # every image ahead of its own curve
    row = judge(leads)
    d = np.array(list(leads.values()))
    half = scipy_stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert row["measured"] == pytest.approx(d.mean()) and row["seeds"] == 3
    assert row["low"] == pytest.approx(d.mean() - half)
    assert row["high"] == pytest.approx(d.mean() + half)
    assert row["verdict"] == "holds" and row["per"] == "images"
    assert row["reason"].startswith("each of the 3 kodak images against its own baseline curve")
    mixed = {"a": 0.05, "b": -0.04, "c": 0.002}  # ahead on average, not image by image
    row = judge(mixed)
    assert row["measured"] == pytest.approx(0.004) and row["verdict"] == "not resolved"
    assert row["reason"].startswith("the 95% interval over images includes the rule's bound (> 0)")
    # The mean curves alone call it: SSIM 0.004 above the mean curve at the same bpp.
    row = judge(mixed, per_image=False)
    assert row["verdict"] == "holds" and row["low"] is None
    assert "no interval: the baseline's sweep has no per-image records" in row["reason"]


def test_a_codec_curve_is_compared_with_the_set_measured_on_its_images(tmp_path):
    """tools/table2.codec_curves: a point is set beside the JPEG 2000 sweep of the
    rate-distortion set that recorded the same images (by their id), or, where the point or the
    set is older than ids, of the same dataset folder and split; a curve from before either is
    compared with rd/; a point whose images no set measured gets no baseline."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from table2 import codec_curves

    def write_set(folder, dataset, images_id, psnr):
        (tmp_path / folder / "baselines").mkdir(parents=True)
        sweep = [
            {"bpp_real": b, "psnr": psnr + 10 * b, "ssim": 0.5, "ms_ssim": 0.8} for b in (0.0, 1.0)
        ]
        data = {"dataset": dataset, "split": "val", "baselines": {"jpeg2000": sweep}}
        if images_id:
            data["images_id"] = images_id
        (tmp_path / folder / "baselines" / "rd.json").write_text(json.dumps(data))

    write_set("rd", "folder:/d/kodak", None, 20.0)  # older than ids
    write_set("rd_domain", "folder:/d/imagenette2", "aaaa", 30.0)
    base = {"bpp_real": 0.5, "psnr": 25.0, "ssim": 0.5, "ms_ssim": 0.8}
    points = [
        {"step": 1, **base},  # records nothing: rd/
        {
            "step": 2,
            **base,
            "dataset": "folder:/other/imagenette2",
            "split": "val",
            "images_id": "aaaa",
        },
        {"step": 3, **base, "dataset": "folder:/e/kodak", "split": "val", "images_id": "bbbb"},
        {
            "step": 4,
            **base,
            "dataset": "folder:/d/imagenette2",
            "split": "val",
            "images_id": "cccc",
        },  # the same folder, other images: no set
    ]
    (tmp_path / "codec_bpp0.0983").mkdir()
    (tmp_path / "codec_bpp0.0983" / "curve.json").write_text(json.dumps(points))
    curve = codec_curves(str(tmp_path))["codec_bpp0.0983"]
    assert [p["rd_set"] for p in curve] == ["rd", "rd_domain", "rd", None]
    # PSNR at 0.5 bpp interpolated in each set's sweep (20 + 5, 30 + 5).
    assert [p["jpeg2000"].get("psnr") for p in curve] == pytest.approx([25.0, 35.0, 25.0, None])


def test_the_driver_says_where_a_running_trainer_is(tmp_path):
    """tools/reproduce_table2.py progress_line: from the trainer's progress.json."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from reproduce_table2 import Step, progress_line

    from tfcomp import io

    step = Step("codec_bpp0.0983", str(tmp_path / "codec" / "codec.keras"), [])
    assert progress_line(step) is None  # not started, or no summary yet
    progress = dict(step=4210, train_steps=10000, steps_per_s=0.5, eta_s=(10000 - 4210) / 0.5)
    io.write_json(progress, str(tmp_path / "codec" / "progress.json"))
    assert progress_line(step) == (
        "codec_bpp0.0983: step 4,210 / 10,000 (42%), about 3.2 h left at this session's "
        "0.50 steps/s"
    )


def test_unknown_scale_is_refused(tmp_path):
    result = drive(tmp_path, "--scale=huge")
    assert result.returncode == 2 and "unknown --scale=huge" in result.stderr


def test_paper_scale_names_the_missing_manual_folders(tmp_path):
    result = drive(tmp_path, "--scale=paper")
    assert result.returncode != 0 and "MANUAL" in result.stderr


@pytest.mark.parametrize("scale", ["tiny", "small", "paper"])
def test_steps_name_a_preset_and_data_paths_only(tmp_path, scale):
    # The driver carries no settings: every experiment gets --config=SCALE, the data paths and
    # its wiring (model folders, the codec and classifier it starts from), nothing else.
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from reproduce_table2 import ALL_POINTS, table2_plan

    env = {"DATA": "/data/small", "MANUAL": "/data/imagenet", "VOC_MANUAL": "/data/voc"}
    env["TFDS_DIR"] = "/data/tfds"
    plan = table2_plan(scale, str(tmp_path), ALL_POINTS, ["bpp0.0983"], env)
    wiring = {"model_dir", "operating_point", "arch", "input_mode", "codec", "classifier"}
    wiring |= {"init_classifier", "mode", "codecs", "output_dir", "model_dirs", "figure"}
    wiring |= {"output", "json", "baselines", "for", "out", "dataset", "evaluate"}
    wiring |= {"seed"}  # which of a row's seeds a step trains (the plan's, not a setting)
    wiring |= {"domain"}  # which of the config's two rate-distortion sets
    data = {"small": {"data_dir"}, "paper": {"manual_dir", "tfds_data_dir"}}.get(scale, set())
    for step in plan.steps:
        flags = dict(a[2:].split("=", 1) for a in step.argv if a.startswith("--"))
        if step.name != "flops":
            assert flags.pop("config") == scale, step.name
        assert set(flags) <= wiring | data, (step.name, set(flags) - wiring - data)
        if step.name.startswith("rate_distortion_domain/"):  # the config's second set
            assert flags.pop("domain") == "true" and scale == "small", step.name
        if step.name.endswith("/baselines"):  # the baselines once per set, no codec
            assert flags["codecs"] == "" and "baselines" not in flags
        elif "baselines" in flags:  # every codec's own evaluation turns them off
            assert flags["baselines"] == "" and flags["codecs"], step.name
        # Networks on a codec read its store (encoded once), never images through the codec.
        if flags.get("input_mode") in ("compressed", "reconstructed"):
            assert flags["dataset"].startswith(f"store:{tmp_path}/stores/"), step.name
            store = flags["dataset"][len("store:") :]
            encoder = next(s for s in plan.steps if f"--out={store}" in s.argv)
            assert f"--codec={flags['codec']}" in encoder.argv and encoder.name in step.needs
        else:
            assert flags.get("dataset") is None or step.name.startswith("store/")
    segmenters = [s for s in plan.steps if "train_segmentation" in s.argv]
    if scale == "paper":  # segmentation reads VOC's archives, everything else ImageNet's
        assert all("--manual_dir=/data/voc" in s.argv for s in segmenters)
        codec = next(s for s in plan.steps if s.name == "codec_bpp0.0983")
        assert "--manual_dir=/data/imagenet" in codec.argv


def test_every_flag_the_driver_passes_is_one_its_experiment_defines(tmp_path):
    # The fake python accepts anything; the real experiments must know every flag they get.
    # Each experiment's --helpfull runs as the driver runs its steps: forks of this process,
    # which imports TensorFlow once (a Python per experiment imported it 8 times).
    import re

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from reproduce_table2 import ALL_POINTS, Launcher, table2_plan

    env = {"DATA": "/d", "MANUAL": "/m", "VOC_MANUAL": "/v", "TFDS_DIR": "/t"}
    given = {}
    for scale in ("tiny", "small", "paper"):
        for step in table2_plan(scale, str(tmp_path), ALL_POINTS, ["bpp0.0983"], env).steps:
            target = step.argv[1] if step.argv[0] == "-m" else step.argv[0]
            names = {a[2:].split("=", 1)[0] for a in step.argv if a.startswith("--")}
            given.setdefault(target, set()).update(names)
    from absl import flags

    launcher = Launcher(None, jobs=1)
    # A flag this process defined would be listed by every fork: none of the driver's may be.
    assert not set(flags.FLAGS) & set().union(*given.values())
    for i, (target, names) in enumerate(given.items()):
        command = ["-m", target] if not target.endswith(".py") else [target]
        log = tmp_path / f"help{i}.log"
        pid = launcher.start([*command, "--helpfull" if "-m" in command else "--help"], str(log))
        os.wait4(pid, 0)  # absl's --helpfull exits 1 after printing
        known = set(re.findall(r"--(?:\[no\])?([a-z_0-9]+)", log.read_text()))
        assert names <= known, (target, names - known)


def test_forked_steps_run_scripts_and_modules_like_python_does(tmp_path):
    """The default launcher forks the driver (TensorFlow imported once) instead of starting a
    Python per step: a step sees its argv, runs in the repository, writes its log, and its exit
    status and CPU time reach the driver."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from reproduce_table2 import Launcher

    launcher = Launcher(None, jobs=1)
    script = tmp_path / "step.py"
    script.write_text(
        "import os, sys\n"
        "print('argv', sys.argv[1:], os.getcwd())\n"
        "sum(i * i for i in range(3_000_000))\n"
        "raise SystemExit(3)\n"
    )
    results = {}
    for name, argv in {
        "script": [str(script), "--a=1"],
        "module": ["-m", "experiments.train_classifier", "--config=nonesuch", "--model_dir=m"],
        "crash": ["-m", "no_such_module_here"],
    }.items():
        pid = launcher.start(argv, str(tmp_path / f"{name}.log"))
        _, status, usage = os.wait4(pid, 0)
        results[name] = (os.waitstatus_to_exitcode(status), usage.ru_utime)
    script_log = (tmp_path / "script.log").read_text()
    assert results["script"][0] == 3 and f"argv ['--a=1'] {ROOT}" in script_log
    assert results["script"][1] > 0.05  # the child's own CPU time
    assert results["module"][0] == 1  # absl's usage error, one line naming the bad value
    assert "nonesuch" in (tmp_path / "module.log").read_text()
    assert results["crash"][0] == 1
    assert "No module named no_such_module_here" in (tmp_path / "crash.log").read_text()
    # Started again (a trainer resuming), a step's log keeps its earlier run above the new one.
    pid = launcher.start([str(script), "--a=2"], str(tmp_path / "script.log"))
    os.wait4(pid, 0)
    again = (tmp_path / "script.log").read_text()
    assert again.startswith(script_log) and f"argv ['--a=2'] {ROOT}" in again[len(script_log) :]
    assert again.count("==> ") == 2


def test_a_step_that_starts_alone_gets_every_core(tmp_path, monkeypatch):
    """With JOBS=2, two steps that start side by side get half the cores each as TensorFlow's
    thread pools; a step that starts alone (the next step of a chain needs it) gets them all,
    not the half share that left one core of two idle; settings in the environment win."""
    cores = os.cpu_count()
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        monkeypatch.delenv(name, raising=False)
    log = tmp_path / "threads.log"
    env = {"FAKE_THREADS_LOG": str(log)}

    def threads():
        found = dict(line.split() for line in log.read_text().splitlines())
        log.unlink()
        return found

    # A chain: codec -> store -> cResNet-51, each step alone.
    result = drive(tmp_path, "--scale=tiny", "--only=cls/bpp0.0983/cresnet51", jobs=2, env=env)
    assert result.returncode == 0, result.stderr
    assert threads() == {
        "experiments.train_compression": str(cores),
        "experiments.encode_dataset": str(cores),
        "experiments.train_classifier": str(cores),
    }
    # Two steps that need nothing start side by side: half each.
    result = drive(tmp_path, "--scale=tiny", "--only=cls/rgb/resnet50,flops", jobs=2, env=env)
    assert result.returncode == 0, result.stderr
    half = str(max(1, cores // 2))
    assert threads() == {"experiments.train_classifier": half, "experiments.count_flops": half}
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from reproduce_table2 import Launcher

    launcher = Launcher(sys.executable, jobs=2)
    assert launcher.step_env(2)["TF_NUM_INTRAOP_THREADS"] == str(max(1, cores // 2))
    assert launcher.step_env(1)["TF_NUM_INTEROP_THREADS"] == str(cores)
    assert "TF_NUM_INTRAOP_THREADS" not in Launcher(sys.executable, jobs=1).step_env(1)
    launcher.env["TF_NUM_INTRAOP_THREADS"] = "7"  # set by the user
    assert launcher.step_env(1)["TF_NUM_INTRAOP_THREADS"] == "7"


def test_steps_start_a_fresh_interpreter_once_the_code_changed(tmp_path):
    """A source file of the project edited during a run: the next step runs the new code in a
    new Python (a fork would run the old modules, and autograph would read the new file at the
    old line numbers), not a fork of the driver."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from reproduce_table2 import Launcher

    launcher = Launcher(None, jobs=1)
    script = tmp_path / "step.py"
    script.write_text("import sys\nprint('preloaded', 'tfcomp.train.job' in sys.modules)\n")

    def run(name):
        pid = launcher.start([str(script)], str(tmp_path / f"{name}.log"))
        _, status, _ = os.wait4(pid, 0)
        launcher.reaped(pid, os.waitstatus_to_exitcode(status))
        return (tmp_path / f"{name}.log").read_text()

    assert "preloaded True" in run("fork")
    source = os.path.join(ROOT, "tfcomp", "train", "job.py")
    stat = os.stat(source)
    try:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        log = run("fresh")
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "sources changed" in log and "preloaded False" in log


def test_collected_results_keep_the_small_files_only(tmp_path):
    """tools/collect_results.py: results, configs, curves, timings and tables into the
    repository; models, checkpoints, stores and logs stay behind; the destination is replaced."""
    run = tmp_path / "run"
    files = {
        "table2.md": "|", "table2.csv": "a", "timing.json": "{}", "flops.json": "[]",
        "claims.md": "|", "claims.json": "[]",
        "cls/a/result.json": "{}", "cls/a/config.json": "{}", "cls/a/curve.json": "[]",
        "cls/a/classifier.keras": "model", "cls/a/checkpoints/ckpt-1.index": "x",
        "stores/p/classifier/manifest.json": "{}", "logs/flops.log": "log",
        "rd/rd.json": "{}", "bench/inference.json": "{}", "seg/eval_all.json": "{}",
        "seg/s/examples/examples.json": "{}", "seg/s/examples/00_prediction.png": "p",
        "seg/s/examples/00_reconstruction.jpg": "j", "seg/s/examples/notes.txt": "t",
        "seg/s/sample.png": "p",
        # A trainer still training: its curve so far and its config are not collected.
        "cls/b/progress.json": "{}", "cls/b/curve.json": "[]", "cls/b/config.json": "{}",
    }  # fmt: skip
    for name, text in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    dest = tmp_path / "results"
    (dest / "old").mkdir(parents=True)
    tool = os.path.join(ROOT, "tools", "collect_results.py")
    assert subprocess.run([sys.executable, tool, str(run), str(dest)]).returncode == 0
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == sorted(
        ["table2.md", "table2.csv", "timing.json", "flops.json", "cls/a/result.json",
         "claims.md", "claims.json",
         "cls/a/config.json", "cls/a/curve.json", "rd/rd.json", "bench/inference.json",
         "seg/s/examples/examples.json", "seg/s/examples/00_prediction.png",
         "seg/s/examples/00_reconstruction.jpg"]
    )  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = subprocess.run([sys.executable, tool, str(empty), str(dest)], capture_output=True)
    assert refused.returncode == 2 and b"no finished run" in refused.stderr


def test_collected_results_keep_a_redone_steps_last_result_until_its_new_one(tmp_path):
    """tools/collect_results.py: a step the driver set aside to redo (NAME.stale) is collected
    as NAME while NAME has nothing to collect; once NAME has its result, that one alone."""
    run = tmp_path / "run"
    files = {
        "table2.md": "|",
        # Training again: the old result stays.
        "cls/a.stale/result.json": "old a", "cls/a.stale/curve.json": "[]",
        "cls/a.stale/classifier.keras": "model", "cls/a/progress.json": "{}",
        "cls/a/curve.json": "[0]",
        # Trained again: the new result alone.
        "cls/b.stale/result.json": "old b", "cls/b.stale/curve.json": "[1]",
        "cls/b/result.json": "new b",
        # An evaluation waiting for its codec, not started yet.
        "rd/p.stale/rd.json": "old rd",
        # A result file set aside alone (its folder is shared): the old one while it is absent.
        "bench/inference.json.stale": "old bench", "bench/other.json": "{}",
        "table2.csv.stale": "old csv", "table2.csv": "new csv",
        # Set aside unfinished: nothing to keep.
        "cls/c.stale/progress.json": "{}", "cls/c.stale/curve.json": "[2]",
    }  # fmt: skip
    for name, text in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    dest = tmp_path / "results"
    tool = os.path.join(ROOT, "tools", "collect_results.py")
    done = subprocess.run([sys.executable, tool, str(run), str(dest)], capture_output=True)
    assert done.returncode == 0, done.stderr
    copied = {str(p.relative_to(dest)): p.read_text() for p in dest.rglob("*") if p.is_file()}
    assert copied == {
        "table2.md": "|", "table2.csv": "new csv",
        "cls/a/result.json": "old a", "cls/a/curve.json": "[]",
        "cls/b/result.json": "new b",
        "rd/p/rd.json": "old rd",
        "bench/inference.json": "old bench", "bench/other.json": "{}",
    }  # fmt: skip
    said = done.stdout.decode()
    assert "cls/a: its last finished result" in said and "cls/b:" not in said


def test_benchmark_merge_keeps_earlier_rows_until_they_are_measured_again():
    """tools/benchmark_training.py --merge: a row of the earlier file is dropped only once this
    run has measured its (case, precision, xla), and keeps its own run's matmul rate."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from benchmark_training import merged_rows

    def row(case, precision, share, matmul=None):
        r = {"case": case, "precision": precision, "xla": False, "share": share}
        return r if matmul is None else dict(r, matmul_gmacs_per_s=matmul)

    earlier = {
        "matmul_gmacs_per_s": 80.0,
        "rows": [row("codec", "float32", 1.1), row("resnet50", "float32", 0.5, 90.0)],
    }
    # Stopped after re-measuring nothing: every earlier row is still there.
    assert merged_rows(earlier, []) == [
        row("codec", "float32", 1.1, 80.0),
        row("resnet50", "float32", 0.5, 90.0),
    ]
    # One row measured again: it replaces its earlier row only.
    new = row("resnet50", "float32", 0.6, 85.0)
    assert merged_rows(earlier, [new]) == [row("codec", "float32", 1.1, 80.0), new]
    assert merged_rows(None, [new]) == [new]
    # An earlier file's machine stays with its rows.
    earlier["machine"] = {"cpu": "AMD EPYC", "cpu_bfloat16": False}
    assert merged_rows(earlier, [new])[0]["machine"] == earlier["machine"]
    assert "machine" not in merged_rows(earlier, [new])[1]


def test_step_table_shows_a_finetuned_codec_and_its_classifier():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from readme_tables import _step_metric

    codec = {"images": 1000, "bpp_real": 0.11034, "psnr": 21.8847, "ssim": 0.61744}
    joint = {"metrics": {"top1": 0.7121, "top5": 0.9603, "codec": codec}}
    assert _step_metric(joint, "") == (
        "top-1 71.2%, top-5 96.0%; its codec on 1000 validation images: 0.1103 bpp, 21.88 dB, "
        "SSIM 0.6174"
    )
    assert _step_metric({"metrics": {"codec": codec}}, "").startswith("its codec on 1000")
    assert _step_metric({"metrics": {"miou": 0.3345}}, "") == "mIoU 33.5%"


def test_readme_blocks_are_regenerated_from_a_run_folder(tmp_path):
    """tools/readme_tables.py --write: the text between a block's markers is the run folder
    rendered afresh (steps with CPU hours, Table 2 with mean ± 95% interval, figures), text
    outside the markers is kept, and writing twice changes nothing."""
    run = tmp_path / "results" / "run"

    def result(folder, top1, cpu, seed=0, cpu_name="Intel(R) Xeon(R) Processor"):
        (run / folder).mkdir(parents=True)
        data = {
            "metrics": {"top1": top1, "top5": 0.9},
            "train": {"seconds": 1800.0, "cpu_seconds": cpu, "precision": "mixed_bfloat16"},
            "config": {"task": "classifier", "fields": {"seed": seed}},
            "machine": {"cpu": cpu_name},
        }
        (run / folder / "result.json").write_text(json.dumps(data))
        curve = [{"epoch": 1, "top1": top1 / 2}, {"epoch": 2, "top1": top1}]
        (run / folder / "curve.json").write_text(json.dumps(curve))

    result("cls/rgb/resnet50", 0.8, 3600.0, cpu_name="AMD EPYC 9R14 96-Core Processor")
    for seed, top1 in enumerate((0.50, 0.54, 0.52)):
        result(f"cls/bpp0.0983/cresnet51{SUFFIXES[seed]}", top1, 1800.0, seed)
    # A codec's curve beside a JPEG 2000 sweep: at 0.2 bpp JPEG 2000 has (by interpolation)
    # PSNR 26.5 dB and MS-SSIM 0.85, so the gap is 0.80 - 0.85 = -0.05, then -0.02.
    sweep = [
        {"quality": q, "bpp_real": b, "psnr": p, "ssim": 0.5, "ms_ssim": m}
        for q, b, p, m in ((10, 0.1, 25.0, 0.80), (20, 0.3, 28.0, 0.90))
    ]
    (run / "rd" / "baselines").mkdir(parents=True)
    rd = {"dataset": "folder:/x/kodak", "codecs": {}, "baselines": {"jpeg2000": sweep}}
    (run / "rd" / "baselines" / "rd.json").write_text(json.dumps(rd))
    (run / "codec_bpp0.0983").mkdir()
    curve = [
        {"step": s, "bpp_real": 0.2, "psnr": 26.0, "ssim": 0.6, "ms_ssim": m}
        for s, m in ((1000, 0.80), (2000, 0.83))
    ]
    curve[1]["constant_channels"] = 1  # counted from then on (the first point predates it)
    (run / "codec_bpp0.0983" / "curve.json").write_text(json.dumps(curve))
    # A segmenter: its IoU per class (Pole absent from truth and prediction: no IoU).
    (run / "seg" / "rgb" / "resnet50_d").mkdir(parents=True)
    seg = {
        "metrics": {"miou": 0.45, "per_class_iou": {"Sky": 0.9, "Pole": None}},
        "models": {"segmenter": {"classes": ["Sky", "Pole"]}},
        "train": {"seconds": 360.0, "cpu_seconds": 360.0},
        "config": {"task": "segmenter", "fields": {"seed": 0}},
    }
    (run / "seg" / "rgb" / "resnet50_d" / "result.json").write_text(json.dumps(seg))
    # A step that trains nothing counts with the driver's timing (1 h wall, 0.5 h CPU).
    # A trainer that resumed: the driver timed its last session only (10 min), its own clock
    # every session (0.5 h wall, 1 h CPU), which the table shows. Its step name is not its
    # folder's (as the driver names a joint control's steps, cls/../joint/P/NAME): one row.
    timing = {
        "rate_distortion/baselines": {"wall_s": 3600.0, "cpu_s": 1800.0},
        "cls/../cls/rgb/resnet50": {"wall_s": 600.0, "cpu_s": 900.0},
    }
    (run / "timing.json").write_text(json.dumps(timing))
    readme = tmp_path / "README.md"
    before, after = "# Title\n\nHand-written text.\n\n", "\nMore text.\n"
    block = "<!-- generated by tools/readme_tables.py from results/run -->\nstale\n"
    readme.write_text(before + block + "<!-- end generated -->\n" + after)
    tool = os.path.join(ROOT, "tools", "readme_tables.py")
    for _ in range(2):
        done = subprocess.run([sys.executable, tool, "--write", str(readme)], capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        if _ == 0:
            first = readme.read_text()
    text = readme.read_text()
    assert text == first  # idempotent
    assert text.startswith(before) and text.endswith("<!-- end generated -->\n" + after)
    assert "stale" not in text
    row = "| cls/rgb/resnet50 | 0 | 0.50 | 1.00 | AMD EPYC 9R14 96-Core, bfloat16 | top-1 80.0%"
    assert row in text
    assert "| rate_distortion/baselines | | 1.00 | 0.50 | | |" in text
    assert "Total: 3.10 wall hours, 3.10 CPU hours." in text and "cls/../" not in text
    # The trainers' hours by machine: 1 h on the AMD, 3 x 0.5 on the Intel (the segmenter
    # below records no machine: not counted).
    by_machine = "AMD EPYC 9R14 96-Core, bfloat16 1.00, Intel Xeon, bfloat16 1.50."
    assert "The trainings' CPU hours by machine: " + by_machine in text
    assert "| segmenter | mIoU | Sky | Pole |" in text
    assert "| rgb/resnet50_d | 45.0 | 90.0 |  |" in text
    half = 4.302653 * np.std([50, 54, 52], ddof=1) / np.sqrt(3)
    assert f"| bpp0.0983 | cResNet-51 | z | 52.00 ± {half:.2f} (3 seeds) |" in text
    figure = tmp_path / "docs" / "figures" / "run_classification_curves.png"
    assert figure.stat().st_size > 0
    assert "](docs/figures/run_classification_curves.png)" in text
    assert "| JPEG 2000 MS-SSIM | MS-SSIM gap | constant channels |" in text
    assert (
        "| codec_bpp0.0983 | 1,000 | 0.2000 | 26.00 | 26.50 | 0.8000 | 0.8500 | -0.0500 |  |"
        in text
    )
    assert (
        "| codec_bpp0.0983 | 2,000 | 0.2000 | 26.00 | 26.50 | 0.8300 | 0.8500 | -0.0200 | 1 |"
        in text
    )
    assert (
        "moved +0.0300 per 1,000 steps between steps 1,000 and 2,000 (behind by 0.0200: at that "
        "rate it closes after 667 more steps, a floor" in text
    )
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from readme_tables import _closing

    assert _closing(0.01, -0.5) == " (ahead by 0.0100)"
    assert _closing(-0.01, 0.0) == " (behind by 0.0100 and not closing)"
    assert (tmp_path / "docs" / "figures" / "run_codec_curves.png").stat().st_size > 0


def pilots_block(root):
    """ROOT/README.md's block generated from ROOT/results/pilots by tools/readme_tables.py."""
    readme = root / "README.md"
    readme.write_text(
        "<!-- generated by tools/readme_tables.py from results/pilots -->\n<!-- end generated -->\n"
    )
    tool = os.path.join(ROOT, "tools", "readme_tables.py")
    done = subprocess.run([sys.executable, tool, "--write", str(readme)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return readme.read_text()


def test_readme_pilots_block_is_generated_from_the_pilot_folders(tmp_path):
    """tools/readme_tables.py: results/pilots renders one row per segmentation pilot (its
    settings, a config without class_weighting shown with the default, hours, the last curve
    point in the data's class order) and a figure of mIoU and of the classes below 25% IoU."""
    pilots = tmp_path / "results" / "pilots"
    classes = ["Sky", "Pole"]

    def pilot(name, fields, curve, seconds):
        (pilots / name).mkdir(parents=True)
        result = {
            "config": {"task": "segmenter", "fields": dict(train_steps=20, **fields)},
            "metrics": {"pixel_accuracy": 0.875},
            "models": {"segmenter": {"classes": classes}},
            "train": {"seconds": seconds, "cpu_seconds": 2 * seconds},
        }
        (pilots / name / "result.json").write_text(json.dumps(result))
        points = [
            {
                "step": 10 * (i + 1),
                "miou": (sky + pole) / 2,
                "per_class_iou": {"Pole": pole, "Sky": sky},
            }
            for i, (sky, pole) in enumerate(curve)
        ]
        (pilots / name / "curve.json").write_text(json.dumps(points))

    pilot("a", {}, [(0.8, 0.0), (0.9, 0.1)], 1800.0)
    pilot("b", {"class_weighting": "median_frequency"}, [(0.7, 0.2), (0.8, 0.4)], 3600.0)
    (pilots / "notes").mkdir()  # a folder without a curve is not a pilot
    text = pilots_block(tmp_path)
    assert (
        "| class_weighting | val_limit | wall h | CPU h | mIoU | pixel acc. | Sky | Pole |" in text
    )
    assert "| a | 20 | 320 | none | None | 0.50 | 1.00 | 50.0 | 87.5 | 90.0 | 10.0 |" in text
    assert (
        "| b | 20 | 320 | median_frequency | None | 1.00 | 2.00 | 60.0 | 87.5 | 80.0 | 40.0 |"
        in text
    )
    assert "| notes |" not in text
    assert (tmp_path / "docs" / "figures" / "pilots_segmentation.png").stat().st_size > 0


def test_readme_classification_pilot_is_set_beside_its_grid_twin(tmp_path):
    """tools/readme_tables.py: a classification pilot in results/pilots is set beside the grid
    step with its network, input, data, codec draw and seed whose settings differ least (a
    twin written before crop_grid existed reads as crop_grid 1), not beside a step on another
    codec draw, another seed or in the pilots folder; the row names the changed settings, both
    top-1s, their difference and the running training accuracies; a figure of both curves."""
    results = tmp_path / "results"

    def run(folder, top1, codec, train_acc, **fields):
        folder.mkdir(parents=True)
        fields = {"arch": "resnet50", "input_mode": "reconstructed", "seed": 1,
                  "dataset": "store:/s", "epochs": 30, **fields}  # fmt: skip
        result = {
            "config": {"task": "classifier", "fields": fields},
            "metrics": {"top1": top1, "top5": 0.9},
            "models": {"classifier": {"codec_model_id": codec}},
            "train": {"seconds": 3600.0, "cpu_seconds": 5400.0,
                      "final_metrics": {"accuracy": train_acc}},
        }  # fmt: skip
        (folder / "result.json").write_text(json.dumps(result))
        curve = [{"epoch": e, "top1": top1 - 0.1 / e, "top5": 0.9} for e in (1.0, 2.0)]
        (folder / "curve.json").write_text(json.dumps(curve))

    cls = results / "table2_small" / "cls" / "bpp0.0983"
    run(cls / "resnet50.seed1", 0.738, "A", 0.828)  # the twin: crop_grid absent (1)
    run(cls / "resnet50.seed2", 0.741, "A", 0.83, seed=2)  # another seed
    run(cls / "resnet50_other", 0.70, "B", 0.8, crop_grid=8)  # another codec draw
    run(cls / "resnet50_more", 0.75, "A", 0.9, epochs=40, lr=1)  # differs in more fields
    run(results / "pilots" / "recon_grid8", 0.712, "A", 0.801, crop_grid=8)
    run(results / "pilots" / "lonely", 0.5, "C", 0.6)  # no twin anywhere
    # Pilots of other tasks, a hand-written record among them, are not classification rows.
    for name, record in (("codec", {"config": {"task": "codec", "fields": {}}}), ("notes", {})):
        (results / "pilots" / name).mkdir()
        (results / "pilots" / name / "result.json").write_text(json.dumps(record))
    text = pilots_block(tmp_path)
    assert (
        "| recon_grid8 | table2_small/cls/bpp0.0983/resnet50.seed1 | crop_grid 1 -> 8 | 71.2 | "
        "73.8 | -2.6 | 80.1 | 82.8 | 1.00 | 1.50 |" in text
    )
    assert "| codec |" not in text and "| notes |" not in text
    assert (
        "| lonely | none | (no grid step with its network, input, data, codec and seed) | 50.0 |"
        in text
    )
    assert (tmp_path / "docs" / "figures" / "pilots_classification.png").stat().st_size > 0


def test_benchmark_alternates_bare_and_loop_timing():
    """tools/benchmark_training.py times bare and loop steps in `repeats` alternations: one
    overhead per alternation, each the ratio of that alternation's median step times, and
    rates (examples per second of the batch of 4) from the medians of every timed call."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import keras
    import numpy as np
    import tensorflow as tf
    from benchmark_training import side_by_side

    def build():
        model = keras.Sequential([keras.layers.Dense(3)])
        model(np.zeros([1, 5], np.float32))
        return {"model": model, "optimizer": keras.optimizers.SGD(0.1)}

    def loss(state, data):
        x, y = data
        return tf.reduce_mean(tf.square(state["model"](x) - y)), {}

    data = (np.ones([4, 5], np.float32), np.zeros([4, 3], np.float32))
    bare, through, overheads = side_by_side(build, data, loss, 3, False, repeats=2)
    assert len(overheads) == 2 and all(o > -1 for o in overheads)
    assert 0 < bare < float("inf") and 0 < through < float("inf")


def test_figure_titles_carry_no_machine_paths():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from table2 import dataset_title

    assert dataset_title("folder:/work/shared/datasets/kodak/") == "folder:kodak"
    assert dataset_title("default") == "default" and dataset_title("voc2012_sbd") == "voc2012_sbd"


def test_projection_uses_pilots_for_a_kind_of_trainer_the_grid_has_not_finished(tmp_path):
    """tools/readme_tables.py: the small plan's CPU hours at the mean measured per kind of
    trainer; a kind without a finished grid step at the CPU hours of the pilots trained with the
    small preset's cost settings (steps, batch, crop, width), not of other pilots."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from readme_tables import pilot_cpu, projection
    from reproduce_table2 import DEFAULT_POINTS, JOINT_POINTS, TRAINERS, table2_plan

    from tfcomp import configs

    preset = dataclasses.asdict(configs.get("segmenter", "small"))
    for name, steps, cpu in (("same", preset["train_steps"], 1800.0), ("short", 100, 60.0)):
        fields = {**preset, "train_steps": steps, "class_weighting": "none"}
        result = {"config": {"task": "segmenter", "fields": fields}, "train": {"cpu_seconds": cpu}}
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps(result))
    pilots = pilot_cpu(str(tmp_path))
    assert pilots == {"segmenter": ([1800.0], ["same"])}
    plan = table2_plan(
        "small", "/run", DEFAULT_POINTS["small"], JOINT_POINTS["small"], {"DATA": "/d"}
    )
    tasks = [TRAINERS.get(s.argv[1]) for s in plan.steps if s.argv[0] == "-m"]
    n_cls, n_seg = tasks.count("classifier"), tasks.count("segmenter")
    text = projection({"classifier": [3600.0, 7200.0]}, pilots)
    assert f"{n_cls} classifier trainings x 1.50 h" in text
    assert f"{n_seg} segmenter trainings x 0.50 h (as the pilots same took)" in text
    assert f"= {1.5 * n_cls + 0.5 * n_seg:.1f} CPU hours" in text
    assert "not measured yet:" in text and "codec trainings" in text.split("not measured yet:")[1]
    # With the results folder: the trainings without a result there, at the same means.
    done = tmp_path / "results" / "cls" / "rgb" / "resnet50"
    done.mkdir(parents=True)
    (done / "result.json").write_text("{}")
    text = projection({"classifier": [3600.0, 7200.0]}, pilots, str(tmp_path / "results"))
    n = len(tasks) - tasks.count(None)
    assert f"Of its {n} trainings 1 have a result here; the other {n - 1} (" in text
    assert f"{n_cls - 1} classifier, " in text and f"{n_seg} segmenter)" in text
    assert f"come to {1.5 * (n_cls - 1) + 0.5 * n_seg:.1f} CPU hours" in text


def test_fig7_follows_each_finetuned_seed_from_its_own_baseline(tmp_path):
    # Seeds 1 and 2 finetuned (seed 2's control not run yet), seed 0 never: Fig. 7's data is
    # each finetuned seed's cResNet-51 / -51-d, then its control's and joint's networks.
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import table2

    def write(folder, **metrics):
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({"metrics": metrics}))

    assert table2.fig_joint(str(tmp_path), path=str(tmp_path / "f.png")) is False
    for seed in (0, 1, 2):
        suffix = f".seed{seed}" if seed else ""
        write(
            tmp_path / "cls" / "bpp0.0983" / f"cresnet51{suffix}", top1=0.70 + seed / 100, top5=0.9
        )
        write(tmp_path / "seg" / "bpp0.0983" / f"cresnet51_d{suffix}", miou=0.30 + seed / 100)
    for seed, names in ((1, ("joint", "control", "seg_joint", "seg_control")), (2, ("joint",))):
        for name in names:
            metric = "miou" if name.startswith("seg") else "top1"
            value = 0.5 + seed / 100 + (0.1 if "joint" in name else 0.0)
            write(tmp_path / "joint" / f"bpp0.0983.seed{seed}" / name, **{metric: value})
    seeds = table2.joint_seeds(str(tmp_path))["bpp0.0983"]
    assert list(seeds) == [1, 2]
    assert seeds[1]["baseline"] == pytest.approx({"top1": 71.0, "top5": 90.0, "miou": 31.0})
    assert seeds[1]["codec ft."] == pytest.approx({"top1": 51.0, "top5": None, "miou": 51.0})
    assert seeds[1]["joint ft."]["top1"] == pytest.approx(61.0)
    assert seeds[2]["baseline"]["top1"] == pytest.approx(72.0)
    assert seeds[2]["codec ft."] == {"top1": None, "top5": None, "miou": None}
    assert seeds[2]["joint ft."]["top1"] == pytest.approx(62.0)
    path = tmp_path / "fig7.png"
    assert table2.fig_joint(str(tmp_path), path=str(path)) is True
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_lists_what_a_run_would_do_and_its_cpu_hours(tmp_path, monkeypatch):
    """--plan runs nothing: each step is done, to run, or redone with the reason, and the trainers
    to run are estimated at the mean CPU seconds of this run's finished trainers of their kind
    (the driver's timing where a trainer kept no clock), measured over the whole plan even when
    --only lists a part of it."""
    assert drive(tmp_path, "--scale=tiny", "--only=cls/bpp0.0983/cresnet51").returncode == 0
    run = tmp_path / "run"
    timing = json.loads((run / "timing.json").read_text())
    timing["cls/bpp0.0983/cresnet51"]["cpu_s"] = 7200.0  # the fake trains in a second: 2 h
    (run / "timing.json").write_text(json.dumps(timing))
    cls_hours = 2.0
    before = len(calls(tmp_path))
    started = run / "cls/bpp0.0983/resnet50"
    started.mkdir(parents=True)
    (started / "progress.json").write_text(json.dumps({"step": 30, "train_steps": 120}))
    result = drive(tmp_path, "--scale=tiny", "--plan")
    assert result.returncode == 0, result.stderr
    assert len(calls(tmp_path)) == before  # nothing ran
    lines = dict(line.split("] ", 1)[1].split(": ", 1) for line in result.stdout.splitlines()[:-1])
    assert lines["codec_bpp0.0983"] == "done"
    assert lines["cls/bpp0.0983/cresnet51"] == "done"
    assert lines["cls/bpp0.0983/cresnet39"] == f"to run, ~{cls_hours:.2f} CPU h"
    # A trainer that started (its progress.json, here a quarter of its steps): the rest of it.
    assert (
        lines["cls/bpp0.0983/resnet50"]
        == f"to run, resumes near step 30 / 120, ~{0.75 * cls_hours:.2f} CPU h"
    )
    codec_hours = timing["codec_bpp0.0983"]["cpu_s"] / 3600
    assert lines["codec_bpp0.635"] == f"to run, ~{codec_hours:.2f} CPU h"
    assert lines["seg/bpp0.635/cresnet51_d"] == "to run"  # no segmenter finished: no estimate
    total = len(lines)
    to_run = [n for n, what in lines.items() if what != "done"]
    summary = result.stdout.splitlines()[-1]
    assert summary.startswith(f"{total - len(to_run)} of {total} steps done; {len(to_run)} to run")
    assert "nothing measured yet for joint, segmenter" in summary
    # A network whose weights are gone is redone when a step that starts from them runs: the
    # plan says why, and --only lists that part of the plan, its estimate from the whole run.
    (run / "cls/bpp0.0983/cresnet51/classifier.keras").unlink()
    result = drive(tmp_path, "--scale=tiny", "--plan", "--only=seg/bpp0.0983/cresnet51_d")
    lines = dict(line.split("] ", 1)[1].split(": ", 1) for line in result.stdout.splitlines()[:-1])
    assert lines["cls/bpp0.0983/cresnet51"] == (
        "redone: its model is not on this machine and seg/bpp0.0983/cresnet51_d reads it, "
        f"~{cls_hours:.2f} CPU h"
    )
    assert set(lines) == {
        "codec_bpp0.0983",
        "store/bpp0.0983/classifier",
        "cls/bpp0.0983/cresnet51",
        "seg/bpp0.0983/cresnet51_d",
    }
    assert "note:" not in result.stdout  # the codec does not train again
    assert len(calls(tmp_path)) == before
    # The codec and its store lost too (a new machine): a row that trains now is on a new draw
    # of it, while cResNet-51's row stays on the old one; the plan says so under that row only.
    (run / "codec_bpp0.0983" / "codec.keras").unlink()
    shutil.rmtree(run / "stores")
    result = drive(tmp_path, "--scale=tiny", "--plan", "--only=cls/bpp0.0983/resnet50")
    out = result.stdout.splitlines()
    row = next(k for k, line in enumerate(out) if "] cls/bpp0.0983/resnet50: " in line)
    assert out[row + 1].startswith(
        "    note: trains on a new draw of codec_bpp0.0983, where cls/bpp0.0983/cresnet51 stays "
        "on the old one"
    )
    assert sum("note:" in line for line in out) == 1
    # Two rows on the new draw: the whole note under the first, a pointer to it under the second.
    result = drive(
        tmp_path, "--scale=tiny", "--plan", "--only=cls/bpp0.0983/resnet50,cls/bpp0.0983/cresnet39"
    )
    out = result.stdout.splitlines()
    notes = [line for line in out if "note:" in line]
    assert len(notes) == 2 and notes[0].startswith("    note: trains on a new draw of ")
    assert notes[1] == (
        "    note: trains on the new draw of codec_bpp0.0983 too (see the note under "
        "cls/bpp0.0983/resnet50)"
    )
    assert len(calls(tmp_path)) == before
    assert "measured only in another precision" not in summary  # the fakes record none

    # Trainers timed in another precision than the one they compute in on this machine (a codec
    # in bfloat16 on a CPU with it natively, this one computing in float32) are used only where
    # none computed in this machine's, and the plan says which estimates come from elsewhere.
    def record(name, precision, cpu_s):
        path = run / name / "result.json"
        result = json.loads(path.read_text())
        result["train"] = dict(result.get("train") or {}, precision=precision, cpu_seconds=cpu_s)
        path.write_text(json.dumps(result))

    record("codec_bpp0.0983", "mixed_bfloat16", 3600.0)
    record("cls/bpp0.0983/cresnet51", "float32", 1800.0)
    shutil.copytree(run / "cls/bpp0.0983/cresnet51", run / "cls/bpp0.0983/cresnet39")
    record("cls/bpp0.0983/cresnet39", "mixed_bfloat16", 360.0)
    result = drive(tmp_path, "--scale=tiny", "--plan", env={"TFCOMP_CPU_BFLOAT16": "0"})
    lines = dict(line.split("] ", 1)[1].split(": ", 1) for line in result.stdout.splitlines()[:-1])
    assert lines["codec_bpp0.635"] == "to run, ~1.00 CPU h"  # the only codec measured
    assert lines["cls/rgb/resnet50"] == "to run, ~0.50 CPU h"  # float32's alone
    assert result.stdout.splitlines()[-1].endswith(
        "; codec measured only in another precision than this machine's float32 (in float32 on "
        "a CPU without native bfloat16 a codec trained 5-7x slower, a classifier 2-4x, than in "
        "bfloat16 on one with it): those estimates may be far off here"
    )
    # On a CPU with native bfloat16 the tiny codec computes in it (the codec's mixed precision
    # pays even there), the tiny classifiers in float32 (mixed_precision off; `configs._TINY`):
    # each task's estimate is from its own precision's trainers.
    result = drive(tmp_path, "--scale=tiny", "--plan", env={"TFCOMP_CPU_BFLOAT16": "1"})
    lines = dict(line.split("] ", 1)[1].split(": ", 1) for line in result.stdout.splitlines()[:-1])
    assert lines["cls/rgb/resnet50"] == "to run, ~0.50 CPU h"  # float32's alone
    assert lines["codec_bpp0.635"] == "to run, ~1.00 CPU h"
    assert "measured only in another precision" not in result.stdout
    # A preset with mixed precision computes in bfloat16 on such a CPU, in float32 on the others.
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from reproduce_table2 import measured_cpu, scale_plan

    steps = [
        dataclasses.replace(s, argv=[*s.argv, "--mixed_precision=true"])
        for s in scale_plan("tiny", str(run)).steps
    ]
    for native, classifier, elsewhere in (
        ("1", [360.0], {}),  # bfloat16's alone
        ("0", [1800.0], {"codec": "float32"}),  # float32's alone; the codec measured elsewhere
    ):
        monkeypatch.setenv("TFCOMP_CPU_BFLOAT16", native)
        cpu, other = measured_cpu(steps, str(run))
        assert (cpu["classifier"], cpu["codec"], other) == (classifier, [3600.0], elsewhere)


def test_joint_claims_say_at_which_rates_the_two_codecs_are(tmp_path):
    # Joint finetuning that ends at more bits than its control has more to classify from: every
    # joint-vs-control row (accuracy too, not only SSIM) names the paired rate difference.
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import claims

    for seed, (joint, control, bpp_joint, bpp_control) in {
        1: (0.712, 0.702, 0.0859, 0.0820),
        2: (0.712, 0.701, 0.0855, 0.0816),
    }.items():
        folder = tmp_path / "joint" / f"bpp0.0983.seed{seed}"
        for name, top1 in (("joint", joint), ("control", control)):
            (folder / name).mkdir(parents=True)
            (folder / name / "result.json").write_text(json.dumps({"metrics": {"top1": top1}}))
        codecs = {
            "joint": {"mean": {"bpp_real": bpp_joint, "ssim": 0.62}},
            "codec_ft": {"mean": {"bpp_real": bpp_control, "ssim": 0.61}},
        }
        (folder / "rd").mkdir()
        (folder / "rd" / "rd.json").write_text(json.dumps({"codecs": codecs}))
    items = {c["what"]: c for c in claims.check(str(tmp_path)) if c["claim"] == "joint"}
    top1 = items["bpp0.0983: top-1 %, joint ft. - codec ft. (the control)"]
    assert top1["measured"] == pytest.approx(1.05)
    assert "at +0.0039 bpp (joint - control)" in top1["reason"]
    assert (
        "at +0.0039 bpp" in items["bpp0.0983: SSIM, joint ft. - codec ft. (the control)"]["reason"]
    )


def test_validation_curves_have_a_panel_per_point_and_every_seed(tmp_path, monkeypatch):
    # Fig. 3 / 4 read every seed's curve.json (seed 0 and NAME.seedK), a panel per operating
    # point after the original images, Table 2's networks in order; the README draws top-1.
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import table2

    def write(folder, curve):
        folder.mkdir(parents=True)
        (folder / "curve.json").write_text(json.dumps(curve))

    assert table2.fig_curves(str(tmp_path), kind="cls", path=str(tmp_path / "f.png")) is False
    for seed, top1 in ((0, 0.5), (1, 0.6)):
        suffix = f".seed{seed}" if seed else ""
        write(
            tmp_path / "cls" / "bpp0.0983" / f"cresnet51{suffix}",
            [
                {"epoch": 1, "top1": top1, "top5": 0.9},
                {"epoch": 2, "top1": top1 + 0.1, "top5": 0.9},
            ],
        )
    write(tmp_path / "cls" / "bpp0.0983" / "resnet71", [{"epoch": 1, "top1": 0.4, "top5": 0.8}])
    write(tmp_path / "cls" / "rgb" / "resnet50", [{"epoch": 1, "top1": 0.7, "top5": 0.95}])
    drawn = {}
    monkeypatch.setattr(table2.plots, "seeded_curves", lambda *a: drawn.update(args=a))
    path = str(tmp_path / "fig3.png")
    assert table2.fig_curves(str(tmp_path), kind="cls", metric="top1", path=path) is True
    panels, written, x_label, y_label = drawn["args"]
    assert (written, x_label, y_label) == (path, "epoch", "top-1 accuracy %")
    assert list(panels) == ["original", "0.0983 bpp"]
    assert panels["original"] == {"ResNet-50": [[(1, 70.0)]]}
    assert list(panels["0.0983 bpp"]) == ["cResNet-51", "ResNet-71"]
    assert panels["0.0983 bpp"]["cResNet-51"] == [
        [(1, pytest.approx(50.0)), (2, pytest.approx(60.0))],
        [(1, pytest.approx(60.0)), (2, pytest.approx(70.0))],
    ]
    monkeypatch.undo()
    assert table2.fig_curves(str(tmp_path), kind="cls", path=path) is True  # top-5, drawn
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_claims_json_keeps_ten_significant_digits():
    # Two machines' BLAS gave an interval's end as -2.27763688356501 and -2.277636883564982
    # (a blocked least-squares fit): committed, they differed; rounded, they are one number.
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import claims

    a = claims.rounded([{"low": -2.27763688356501, "n": 3, "what": "x"}])
    b = claims.rounded([{"low": -2.277636883564982, "n": 3, "what": "x"}])
    assert a == b == [{"low": -2.277636884, "n": 3, "what": "x"}]
    assert claims.rounded({"t": (0.1 + 0.2, None, True)}) == {"t": [0.3, None, True]}


def test_a_row_a_trainer_has_only_started_is_not_in_table2(tmp_path):
    # The driver makes a trainer's folder when it starts it (curve.json comes at its first
    # evaluation): Table 2 in the run folder showed that row with "0 / 0" seeds until it ended.
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import table2

    started = tmp_path / "cls" / "bpp0.635" / "cresnet51"
    started.mkdir(parents=True)
    (started / "curve.json").write_text(json.dumps([{"epoch": 1, "top1": 0.3}]))
    finished = tmp_path / "cls" / "bpp0.635" / "resnet50"
    finished.mkdir(parents=True)
    (finished / "result.json").write_text(json.dumps({"metrics": {"top1": 0.7, "top5": 0.9}}))
    found = [(r["point"], r["network"]) for r in table2.rows(str(tmp_path))]
    assert found == [("original", "ResNet-50"), ("bpp0.635", "ResNet-50")]


def test_an_evaluation_of_a_codec_trained_again_since_is_redone(tmp_path):
    # The 0.330 bpp codec trained again in a run of its rows (--only them), then its
    # rate-distortion steps asked for alone: their rd.json named the old draw's model id and
    # were kept, so the claims set the new codec's rows beside the old codec's Kodak curve.
    run = tmp_path / "run"
    only = "--only=rate_distortion/bpp0.0983,cls/bpp0.0983/cresnet51"
    assert drive(tmp_path, "--scale=tiny", only).returncode == 0
    rd = run / "rd" / "bpp0.0983" / "rd.json"
    old = json.loads(rd.read_text())["codecs"]["codec_bpp0.0983"]["model_id"]
    (run / "codec_bpp0.0983" / "codec.keras").unlink()  # lost: trains again with a row of it
    shutil.rmtree(run / "stores")
    assert drive(tmp_path, "--scale=tiny", "--only=cls/bpp0.0983/resnet50").returncode == 0
    new = (run / "codec_bpp0.0983" / "codec.keras").read_text()
    assert new != old and json.loads(rd.read_text())["codecs"]["codec_bpp0.0983"]["model_id"] == old
    before = len(calls(tmp_path))
    result = drive(tmp_path, "--scale=tiny", "--plan", "--only=rate_distortion/bpp0.0983")
    lines = dict(line.split("] ", 1)[1].split(": ", 1) for line in result.stdout.splitlines()[:-1])
    assert lines["rate_distortion/bpp0.0983"] == (
        f"redone: made from codec_bpp0.0983 of model {old}, trained again since (now {new})"
    )
    assert lines["codec_bpp0.0983"] == "done"
    # The rows stay draws: cResNet-51 on the old codec, ResNet-50 on the new; nothing retrains.
    result = drive(tmp_path, "--scale=tiny", "--plan")
    lines = dict(line.split("] ", 1)[1].split(": ", 1) for line in result.stdout.splitlines()[:-1])
    assert lines["cls/bpp0.0983/cresnet51"] == "done" and lines["cls/bpp0.0983/resnet50"] == "done"
    assert len(calls(tmp_path)) == before
    result = drive(tmp_path, "--scale=tiny", "--only=rate_distortion/bpp0.0983")
    assert result.returncode == 0, result.stderr
    assert f"made from codec_bpp0.0983 of model {old}" in result.stdout
    ran = calls(tmp_path)[before:]
    assert [c.split()[0] for c in ran if "rd/bpp0.0983" in c] == ["experiments.eval_compression"]
    assert not any("train_" in c or "encode_dataset" in c for c in ran)
    assert json.loads(rd.read_text())["codecs"]["codec_bpp0.0983"]["model_id"] == new
    # Asked again: done.
    result = drive(tmp_path, "--scale=tiny", "--plan", "--only=rate_distortion/bpp0.0983")
    assert "rate_distortion/bpp0.0983: done" in result.stdout


def test_the_readme_is_what_the_committed_results_generate(tmp_path):
    """tools/readme_tables.py --write over a copy of ROOT's README.md and results/ changes no
    line: every generated block (tables, claims, hours) is the committed results rendered, and
    every record in results/ is one the tool reads (a pilot's hand-written result.json without a
    config task stopped it, unseen, until the README was next regenerated)."""
    shutil.copy(os.path.join(ROOT, "README.md"), tmp_path / "README.md")
    shutil.copytree(os.path.join(ROOT, "results"), tmp_path / "results")
    tool = os.path.join(ROOT, "tools", "readme_tables.py")
    readme = str(tmp_path / "README.md")
    done = subprocess.run([sys.executable, tool, "--write", readme], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    with open(os.path.join(ROOT, "README.md")) as committed:
        expected = committed.read().splitlines()
    changed = [
        f"line {i + 1}: {a!r} -> {b!r}"
        for i, (a, b) in enumerate(zip(expected, (tmp_path / "README.md").read_text().splitlines()))
        if a != b
    ]
    assert not changed, "run tools/readme_tables.py --write README.md:\n" + "\n".join(changed[:5])
    assert len((tmp_path / "README.md").read_text().splitlines()) == len(expected)


def test_the_committed_claims_are_what_the_committed_results_generate(tmp_path, monkeypatch):
    """tools/claims.py over a copy of each committed Table 2 run changes neither claims.md nor
    claims.json (the small run's the README renders): a claim added to the tool or a changed
    rule is regenerated into every committed run, not left to that run's next step (the tiny
    run's claims once missed the ResNet-71 / cResNet-72 pairs and the per-image notes)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import pathlib

    import claims

    runs = sorted(pathlib.Path(ROOT, "results").glob("table2_*/claims.md"))
    assert len(runs) >= 2
    monkeypatch.chdir(tmp_path)  # the run folder by the relative path its heading names
    for path in runs:
        folder = path.parent
        copy = tmp_path / folder.relative_to(ROOT)
        shutil.copytree(folder, copy)
        scale = folder.name.split("_", 1)[1]
        claims.main([f"--run_dir={folder.relative_to(ROOT)}", f"--scale={scale}"])
        for name in ("claims.md", "claims.json"):
            assert (copy / name).read_text() == (folder / name).read_text(), (
                f"run tools/claims.py --run_dir={folder.relative_to(ROOT)} --scale={scale}: "
                f"{name} is stale"
            )
