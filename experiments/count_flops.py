"""Prints each network's multiply-accumulates ("FLOPs" in the paper) at the paper's input sizes.

python -m experiments.count_flops                      # a table
python -m experiments.count_flops --json=flops.json    # also machine-readable
"""

from absl import app, flags

from flags import flop_count as _flop_count_flags  # noqa: F401  (defines the flags)
from tfcomp import io
from tfcomp.flops import flop_table

FLAGS = flags.FLAGS


def main(argv):
    del argv
    rows = flop_table()
    if FLAGS.json:
        io.write_json(rows, FLAGS.json)
    print(f"{'network':<12} {'input':<14} {'MACs (ours)':>12} {'paper':>10} {'ours/paper':>10}")
    for row in rows:
        paper = row["paper_macs"]
        ratio = f"{row['macs'] / paper:.4f}" if paper else "-"
        shape = "x".join(str(d) for d in row["input_shape"])
        paper_text = f"{paper:.3e}" if paper else "-"
        print(f"{row['name']:<12} {shape:<14} {row['macs']:>12.4e} {paper_text:>10} {ratio:>10}")


if __name__ == "__main__":
    app.run(main)
