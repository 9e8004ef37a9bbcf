"""Pictures people look at: sample grids [grey | original | colorized], loss and quality curves."""
import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import color  # noqa: E402

LOSS_NAMES = ("g_gan", "g_l1", "d_real", "d_fake")


def grey_rgb(rgb):
    """The network's input as a picture: the image's CIE L with a* = b* = 0, as uint8 RGB."""
    lab = color.rgb2lab(rgb)
    lab[..., 1:] = 0
    return np.round(color.lab2rgb(lab) * 255).astype(np.uint8)


def triplet_grid(originals, colorized_by_model, per_row=None, gap=2):
    """uint8 grid: each image as [grey | original | colorized by each model ...].

    With one model, several triplets per row (as the original sample grids); with several, one
    image per row and a column per model.
    """
    originals = np.asarray(originals)
    columns = [grey_rgb(originals), originals] + [np.asarray(c) for c in colorized_by_model]
    n, h, w, _ = originals.shape
    per_row = per_row or (min(4, n) if len(colorized_by_model) == 1 else 1)
    rows = math.ceil(n / per_row)
    cell_w = len(columns) * (w + gap) + 2 * gap
    grid = np.full((rows * (h + gap) + gap, per_row * cell_w, 3), 255, np.uint8)
    for i in range(n):
        top, left = gap + (i // per_row) * (h + gap), (i % per_row) * cell_w + gap
        for j, column in enumerate(columns):
            x = left + j * (w + gap)
            grid[top:top + h, x:x + w] = column[i]
    return grid


def save_image(array, path, min_size=None):
    """Saves uint8 RGB; small grids (CIFAR's 32x32 tiles) are enlarged with nearest neighbours."""
    image = Image.fromarray(array)
    if min_size and max(image.size) < min_size:
        factor = math.ceil(min_size / max(image.size))
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def read_log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_loss_curves(logs, path, smooth=20):
    """One panel per loss; `logs` maps a run label to its CSV log file."""
    fig, axes = plt.subplots(1, len(LOSS_NAMES), figsize=(4 * len(LOSS_NAMES), 3.2))
    for label, log_path in logs.items():
        rows = read_log(log_path)
        for ax, name in zip(axes, LOSS_NAMES):
            points = [(int(r["step"]), float(r[name])) for r in rows if r.get(name)]
            if not points:
                continue
            steps, values = map(np.asarray, zip(*points))
            k = max(1, min(smooth, len(values) // 10))
            smoothed = np.convolve(values, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], smoothed, label=label)
    for ax, name in zip(axes, LOSS_NAMES):
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if len(logs) > 1:
        axes[0].legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_quality_curves(evals, path, baseline=None):
    """Test MAE and accuracy of each run (label -> its eval.csv) against training hours and
    against epochs, with the no-colour scores (`baseline`) as a line. Returns False (and writes
    nothing) when no log has a point to draw; logs written before eval.csv had seconds give
    only the epoch panels' points."""
    runs = {label: read_log(p) for label, p in evals.items()}
    runs = {label: rows for label, rows in runs.items() if rows}
    if not runs:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4))
    for row_axes, (metric, title, scale) in zip(axes, (("mae", "test MAE (RGB 0-255, lower is better)", 1),
                                                       ("accuracy", "test accuracy % (higher is better)", 100))):
        for ax, (x_key, x_label, x_scale) in zip(row_axes, (("seconds", "training hours", 1 / 3600),
                                                            ("epoch", "epochs", 1))):
            for label, rows in runs.items():
                line = None
                # The trained weights, then their average (train.py --g-ema) dashed in the same colour.
                for column, suffix, style in ((metric, "", "-"), (f"{metric}_ema", ", weight average", "--")):
                    points = [(float(r[x_key]) * x_scale, float(r[column]) * scale) for r in rows
                              if r.get(x_key) not in (None, "") and r.get(column) not in (None, "")]
                    if points:
                        colour = line.get_color() if line else None
                        line, = ax.plot(*zip(*sorted(points)), style, marker="o", markersize=3, color=colour,
                                        label=label + suffix)
            if baseline and metric in baseline:
                ax.axhline(baseline[metric] * scale, color="grey", linestyle="--", label="no colour")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(x_label)
            ax.grid(alpha=0.3)
    # Below the panels, so that no curve is hidden behind it however many runs there are.
    handles, labels = axes[0][0].get_legend_handles_labels()
    columns = 2 if len(labels) > 3 else len(labels)
    fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.035 * -(-len(labels) // columns) + 0.01, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
