#!/bin/bash
# Does the range penalty change how often the tiny codecs collapse? The tiny preset's codec
# (400 steps, beta warmed up over all of them; embedded data) at 0.0983 bpp for seeds 0-9 and
# at 0.635 bpp for seeds 0-4, each with --range_weight 0 (the tiny preset) and 1 (the small
# preset's), no retry (--collapse_retries=0: a collapse ends the run with LatentCollapse), one
# thread each. Writes runs.json here: per run its exit status, the collapse message if any and
# the trainer's last logged metrics. Models under OUT (default /tmp/tc, not in git).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../../.."
OUT=${OUT:-/tmp/tc}
mkdir -p "$OUT"
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
for spec in bpp0.0983:0-9 bpp0.635:0-4; do
  op=${spec%%:*}; range=${spec#*:}
  for seed in $(seq ${range%-*} ${range#*-}); do
    for w in 0 1; do
      d=$OUT/${op}_w${w}_s${seed}
      [ -f "$d.done" ] && continue
      rm -rf "$d"
      .venv/bin/python -m experiments.train_compression --config=tiny --operating_point="$op" \
        --collapse_retries=0 --seed="$seed" --range_weight="$w" --model_dir="$d" > "$d.log" 2>&1
      echo $? > "$d.done"
    done
  done
done
.venv/bin/python - "$OUT" "$HERE/runs.json" <<'PY'
import glob, json, os, re, sys  # noqa: E401

import tensorflow as tf

LOGGED = ("psnr", "one_hot_channels", "range_excess", "entropy_channels", "entropy_hard")
out, target = sys.argv[1:]
runs, machine = [], None
for done in sorted(glob.glob(os.path.join(out, "*.done"))):
    d = done[: -len(".done")]
    op, w, seed = re.fullmatch(r"(bpp[0-9.]+)_w(\d+)_s(\d+)", os.path.basename(d)).groups()
    with open(done) as f:
        rc = int(f.read())
    with open(d + ".log", errors="replace") as f:
        log = f.read()
    collapse = re.findall(r"LatentCollapse: ([^\n]*)", log)
    run = {"operating_point": op, "range_weight": float(w), "seed": int(seed), "exit": rc,
           "collapse": collapse[-1] if collapse else None}
    if os.path.isfile(os.path.join(d, "result.json")):
        with open(os.path.join(d, "result.json")) as f:
            result = json.load(f)
        train, machine = result["train"], machine or result["machine"]  # what the trainer recorded
        run.update(cpu_seconds=round(train["cpu_seconds"], 1), precision=train["precision"],
                   steps=train["steps"],
                   last_logged={k: round(v, 4) for k, v in train["final_metrics"].items()})
    # The logged scalars (every 50 steps): a channel can go one-hot and y run off early
    # without the run ending collapsed.
    history = {}
    for events in sorted(glob.glob(os.path.join(d, "train", "events*"))):
        for e in tf.compat.v1.train.summary_iterator(events):
            for v in e.summary.value:
                if v.tag in LOGGED:
                    value = float(tf.make_ndarray(v.tensor))
                    history.setdefault(e.step, {})[v.tag] = float(f"{value:.4g}")
    run["logged"] = [{"step": s, **history[s]} for s in sorted(history)]
    runs.append(run)
with open(target, "w") as f:
    json.dump({"machine": machine, "runs": runs}, f, indent=1)
print(f"{len(runs)} runs, {sum(bool(r['collapse']) for r in runs)} collapsed -> {target}")
PY
