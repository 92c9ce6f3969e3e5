"""Data sources named by one `--dataset` string, and pure per-example preprocessing."""
