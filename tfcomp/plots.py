"""Figures in the paper's style, written with matplotlib's Agg backend (no display needed)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tfcomp.io import atomic_write  # noqa: E402

METRIC_LABELS = {"psnr": "PSNR [dB]", "ssim": "SSIM", "ms_ssim": "MS-SSIM"}


def _save(fig, path):
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format=os.path.splitext(path)[1][1:] or "png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, buffer.getvalue())


def rate_distortion(curves, points, path, title=""):
    """Fig. 8: quality vs real bpp. curves: {label: [row]}; points: {label: row}."""
    rows = [r for c in curves.values() for r in c] + list(points.values())
    metrics = [m for m in METRIC_LABELS if any(r.get(m) is not None for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.6))
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics):
        for label, rows in curves.items():
            rows = sorted(rows, key=lambda r: r["bpp_real"])
            ax.plot(
                [r["bpp_real"] for r in rows], [r[metric] for r in rows], "o-", ms=3, label=label
            )
        for label, row in points.items():
            ax.plot(row["bpp_real"], row[metric], "*", ms=12, label=label)
        ax.set_xlabel("bits per pixel (file size)")
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.grid(alpha=0.3)
        ax.set_xlim(left=0)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def codec_curves(curves, baseline, path, title=""):
    """Codecs over training steps: {label: [point with bpp_real, psnr, ms_ssim and
    baseline: {metric: the baseline's at that bpp}]}; real bpp, PSNR and MS-SSIM against the
    step, the baseline at each point's rate dashed in the codec's colour."""
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.6))
    for i, (label, points) in enumerate(curves.items()):
        colour = f"C{i}"
        steps = [p["step"] for p in points]
        axes[0].plot(steps, [p["bpp_real"] for p in points], "o-", color=colour, label=label)
        for ax, metric in zip(axes[1:], ("psnr", "ms_ssim")):
            ax.plot(steps, [p[metric] for p in points], "o-", color=colour, label=label)
            at = [(s, p[baseline][metric]) for s, p in zip(steps, points) if p[baseline]]
            if at:
                ax.plot(*zip(*at), "--", color=colour, label=f"{baseline} at {label}'s bpp")
    axes[0].set_ylabel("bits per pixel (file size)")
    for ax, metric in zip(axes[1:], ("psnr", "ms_ssim")):
        ax.set_ylabel(METRIC_LABELS[metric])
    for ax in axes:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def latent_channels(original, reconstruction, symbols, num_centers, path, title=""):
    """Fig. 9: original, reconstruction and the 4 highest-entropy channels of the symbols."""
    flat = symbols.reshape(-1, symbols.shape[-1])
    entropies = []
    for c in range(flat.shape[1]):
        p = np.bincount(flat[:, c], minlength=num_centers) / flat.shape[0]
        p = p[p > 0]
        entropies.append(float(-(p * np.log2(p)).sum()))
    top = np.argsort(entropies)[::-1][:4]
    fig, axes = plt.subplots(1, 2 + len(top), figsize=(3.2 * (2 + len(top)), 3.2))
    axes[0].imshow(original)
    axes[0].set_title("original")
    axes[1].imshow(reconstruction)
    axes[1].set_title("reconstruction")
    for ax, c in zip(axes[2:], top):
        ax.imshow(symbols[..., c], cmap="viridis", vmin=0, vmax=num_centers - 1)
        ax.set_title(f"channel {c}: {entropies[c]:.2f} bits")
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    _save(fig, path)
    return [int(c) for c in top]


def label_colours(num_classes, seed=3):
    """A fixed colour per class (ignore label: black)."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 255, (256, 3)).astype(np.uint8)
    colours[255] = 0
    return colours


def segmentation_examples(rows, path, classes, titles):
    """Fig. 5: one row per image; columns are images or label maps (2-D int arrays) of
    `classes` (their names, in label order), named in a legend below."""
    num_classes = len(classes)
    colours = label_colours(num_classes)
    fig, axes = plt.subplots(len(rows), len(titles), figsize=(3 * len(titles), 2.4 * len(rows)))
    axes = np.atleast_2d(axes)
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            panel = np.asarray(panel)
            axes[r, c].imshow(colours[panel] if panel.ndim == 2 else panel)
            axes[r, c].axis("off")
            if r == 0:
                axes[r, c].set_title(titles[c], fontsize=9)
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[k] / 255, label=str(name)) for k, name in enumerate(classes)]
    fig.legend(handles=handles, loc="lower center", ncol=min(num_classes, 11), fontsize=8)
    fig.subplots_adjust(bottom=0.1)
    _save(fig, path)


def validation_curves(panels, path, x_label, y_label):
    """Fig. 3 / Fig. 4: {panel title: {label: [(x, y)]}}, one panel per operating point."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels.items()):
        for label, points in series.items():
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a panel with no curves yet has nothing to name
            ax.legend()
    _save(fig, path)


def seeded_curves(panels, path, x_label, y_label):
    """Fig. 3 / Fig. 4 over seeds: {panel title: {label: [[(x, y)] per seed]}}, a colour per
    label (the same in every panel), each seed a thin line, the mean over seeds a thick one at
    the x values every seed has; one legend below."""
    labels = list(dict.fromkeys(k for series in panels.values() for k in series))
    colours = {k: f"C{i % 10}" for i, k in enumerate(labels)}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels.items()):
        for label, seeds in series.items():
            colour = colours[label]
            if len(seeds) > 1:
                for points in seeds:
                    ax.plot(*zip(*points), color=colour, lw=0.7, alpha=0.45)
            common = sorted(set.intersection(*(set(x for x, _ in s) for s in seeds)))
            mean = [np.mean([dict(s)[x] for s in seeds]) for x in common]
            ax.plot(common, mean, color=colour, lw=2, label=label)
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
    counts = {k: max(len(s.get(k, [])) for s in panels.values()) for k in labels}
    handles = [
        plt.Line2D([], [], color=colours[k], lw=2, label=f"{k} ({counts[k]} seeds, mean thick)"
                   if counts[k] > 1 else k)
        for k in labels
    ]  # fmt: skip
    fig.legend(handles=handles, loc="lower center", ncol=min(len(labels), 5), fontsize=8)
    fig.subplots_adjust(bottom=0.3, wspace=0.3)
    _save(fig, path)


def accuracy_vs_flops(panels, path):
    """Fig. 6: {panel title: (y label, {series: [(GMACs, value, network name)]})}."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (title, (y_label, series)) in zip(axes[0], panels.items()):
        for name, points in series.items():
            if not points:
                continue
            points = sorted(points)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
            for x, y, n in points:
                ax.annotate(n, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("GMACs of the architecture (paper input size, width 1)")
        ax.set_ylabel(y_label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a panel with no rows yet has nothing to name
            ax.legend(fontsize=8)
    _save(fig, path)


def joint_movement(seeds, trainings, path):
    """Fig. 7: {point: {seed: {training: {metric: value}}}}, top-1, top-5 and mIoU along
    `trainings` (baseline, control, joint): one thin line per seed (each seed's two
    finetunings start from its own baseline, so the lines are the paired comparison the claims
    make) and the mean over a point's seeds as a thick one."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (
        ("top1", "top-1 %", "classification (cResNet-51)"),
        ("top5", "top-5 %", "classification (the paper's panel)"),
        ("miou", "mIoU %", "segmentation (cResNet-51-d)"),
    )
    x = np.arange(len(trainings))
    for ax, (metric, label, title) in zip(axes, panels):
        for c, (point, by_seed) in enumerate(seeds.items()):
            colour = f"C{c}"
            values = np.array(
                [[by_seed[k][t].get(metric, None) for t in trainings] for k in by_seed],
                dtype=float,
            )  # seeds x trainings, nan where a step has not run
            if len(by_seed) > 1:
                for k, row in zip(by_seed, values):
                    ax.plot(x, row, color=colour, lw=0.8, alpha=0.5, marker=".")
                    last = np.flatnonzero(~np.isnan(row))
                    if last.size:
                        i = last[-1]
                        ax.annotate(
                            f"seed {k}",
                            (x[i], row[i]),
                            fontsize=6,
                            color=colour,
                            xytext=(3, 0),
                            textcoords="offset points",
                            va="center",
                        )
            counts = (~np.isnan(values)).sum(axis=0)
            mean = np.full(len(trainings), np.nan)
            mean[counts > 0] = np.nansum(values, axis=0)[counts > 0] / counts[counts > 0]
            seeds_label = f"{point}, mean of {len(by_seed)} seeds" if len(by_seed) > 1 else point
            ax.plot(x, mean, color=colour, lw=2.2, marker="o", label=seeds_label)
            partial = (counts > 0) & (counts < len(by_seed))  # a mean of fewer seeds: open
            ax.plot(x[partial], mean[partial], ls="", marker="o", mfc="white", mec=colour, ms=7)
            for i in np.flatnonzero(partial):
                ax.annotate(
                    f"{counts[i]} of {len(by_seed)} seeds",
                    (x[i], mean[i]),
                    fontsize=6,
                    color=colour,
                    xytext=(0, -10),
                    textcoords="offset points",
                    ha="center",
                )
        ax.set_xticks(x, trainings)
        ax.set_xlim(-0.3, len(trainings) - 0.5)
        ax.set_ylabel(label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.subplots_adjust(wspace=0.3)
    _save(fig, path)


def joint_rate_distortion(results, path):
    """Fig. 11: {label (point and seed): {codec: mean metrics}}, the codec's real bpp against
    each quality before (baseline: one open marker, the codec every seed started from) and
    after finetuning (codec ft., joint ft.; a colour per label), a line from each start."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    markers = {"codec ft.": "s", "joint ft.": "D"}
    for ax, metric in zip(axes, ("ms_ssim", "ssim", "psnr")):
        for c, (name, codecs) in enumerate(results.items()):
            start = codecs.get("baseline")
            for training, marker in markers.items():
                end = codecs.get(training)
                if end is None:
                    continue
                if start is not None:
                    xs, ys = (start["bpp_real"], end["bpp_real"]), (start[metric], end[metric])
                    ax.plot(xs, ys, color=f"C{c}", lw=0.8, alpha=0.6)
                ax.plot(
                    [end["bpp_real"]],
                    [end[metric]],
                    marker=marker,
                    ls="",
                    color=f"C{c}",
                    label=f"{name} {training}",
                )
            if start is not None:
                ax.plot(
                    [start["bpp_real"]],
                    [start[metric]],
                    marker="o",
                    ls="",
                    mfc="white",
                    mec="black",
                    ms=8,
                    label="baseline codec" if c == 0 else None,
                    zorder=3,
                )
        ax.set_xlabel("bpp (real files)")
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=7)
    fig.subplots_adjust(bottom=0.22 + 0.04 * ((len(labels) - 1) // 5), wspace=0.3)
    _save(fig, path)


def runtime(rows, path, title):
    """Fig. 12: ms per image, decoder + ResNet vs cResNet, per pair and batch size."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    rows = [r for r in rows if r.get("rgb_net")]
    labels = [f"{r['rgb_net']}\nvs {r['compressed_net']}\nbatch {r['batch']}" for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["rgb_ms"] for r in rows], 0.4, label="decoder + ResNet (reconstructed)")
    ax.bar(x + 0.2, [r["compressed_ms"] for r in rows], 0.4, label="cResNet (z)")
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_ylabel("ms per image (float32, this CPU)")
    ax.legend(fontsize=8)
    ax.set_title(title)
    _save(fig, path)
