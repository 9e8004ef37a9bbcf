"""Pictures people look at: sample grids [grey | original | colorized], loss and quality curves
(train.py and test.py draw them; tools/figures.py draws the documents' photo figures)."""
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


def triplet_grid(originals, colorized_by_model, per_row=None, gap=2, truth=True):
    """uint8 grid: each image as [grey | original | colorized by each model ...]; truth=False: no
    original column (photos that have no colour truth, such as old photographs).

    With one model, several triplets per row (as the original sample grids); with several, one
    image per row and a column per model.
    """
    originals = np.asarray(originals)
    columns = [grey_rgb(originals)] + [originals] * truth + [np.asarray(c) for c in colorized_by_model]
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


def _save(fig, path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    _save(fig, path)


QUALITY_PANELS = (  # eval.csv column, title, scale, the baseline's key for its line and its label
    ("mae", "test MAE (RGB 0-255, lower is better)", 1, "mae", "no colour"),
    ("accuracy", "test accuracy % (higher is better)", 100, "accuracy", "no colour"),
    ("colourfulness", "test colourfulness (Hasler and Suesstrunk)", 1, "colourfulness_true", "truth"),
    ("palette", "test palette % (colours used as in the truth)", 100, "palette", "no colour"),
)


def plot_quality_curves(evals, path, baseline=None):
    """Test MAE, accuracy, colourfulness and palette of each run (label -> its eval.csv) against
    training hours and against epochs, with the no-colour scores and the truth's colourfulness
    (`baseline`, test.py's no-colour row) as lines. Returns False (and writes nothing) when no log
    has a point to draw; logs written before eval.csv had seconds give only the epoch panels'
    points, those before it had colour scores only the first two rows."""
    runs = {label: read_log(p) for label, p in evals.items()}
    runs = {label: rows for label, rows in runs.items() if rows}
    if not runs:
        return False
    panels = [panel for panel in QUALITY_PANELS
              if any(r.get(panel[0]) not in (None, "") for rows in runs.values() for r in rows)]
    if not panels:
        return False
    fig, axes = plt.subplots(len(panels), 2, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for row_axes, (metric, title, scale, base_key, base_label) in zip(axes, panels):
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
            if baseline and base_key in baseline:
                ax.axhline(baseline[base_key] * scale, color="grey" if base_label == "no colour" else "black",
                           linestyle="--" if base_label == "no colour" else ":", label=base_label)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(x_label)
            ax.grid(alpha=0.3)
    # Below the panels, so that no curve is hidden behind it however many runs there are.
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[1:, 0]:  # the truth's line, drawn on a later row only
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles, labels = handles + [handle], labels + [label]
    columns = 2 if len(labels) > 3 else len(labels)
    fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=9, frameon=False)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, (0.224 * -(-len(labels) // columns) + 0.064) / height, 1, 1))
    _save(fig, path)
    return True


def plot_classifier_curves(rows, path):
    """The automatic Turing test's held-out accuracy after each epoch of its classifier, a line per
    row of test.py's table (evaluation/realism.py; 50 %: real and colorized alike). False when no row
    has a curve."""
    rows = [r for r in rows if r.get("Classifier curve")]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        curve = 100 * np.asarray(r["Classifier curve"])
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", ms=3, label=f"{r['Dataset']}: {r['Network']}"[:90])
    ax.axhline(50, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="classifier epoch", ylabel="held-out accuracy, real vs colorized (%)", ylim=(40, 101),
           title="Automatic Turing test (50 %: indistinguishable)")
    ax.legend(fontsize=7)
    _save(fig, path)
    return True


def plot_colour_tradeoff(evals, path, baseline=None):
    """Each evaluation of each run (label -> its eval.csv) as a point of test MAE against
    colourfulness, joined in training order, the weight average's dashed: where a GAN trades
    accuracy for colour as it trains. Lines: the no-colour MAE and the truth's colourfulness with
    the band within 10 % of it (`baseline`, test.py's no-colour row). Returns False (and writes
    nothing) when no log has colour scores (eval.csv before 2026-12-02)."""
    runs = {label: read_log(p) for label, p in evals.items()}
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    drawn = False
    for label, rows in runs.items():
        line = None
        for suffix, name, style in (("", label, "-"), ("_ema", label + ", weight average", "--")):
            points = [(float(r["step"]), float(r[f"mae{suffix}"]), float(r[f"colourfulness{suffix}"])) for r in rows
                      if r.get(f"mae{suffix}") not in (None, "") and r.get(f"colourfulness{suffix}") not in (None, "")]
            if not points:
                continue
            _, mae, colour = zip(*sorted(points))
            line, = ax.plot(mae, colour, style, marker="o", markersize=3, label=name,
                            color=line.get_color() if line else None)
            ax.plot(mae[-1:], colour[-1:], marker="s", markersize=7, color=line.get_color())  # the last evaluation
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    baseline = baseline or {}
    if "mae" in baseline:
        ax.axvline(baseline["mae"], color="grey", linestyle="--", label="no colour's MAE")
    if "colourfulness_true" in baseline:
        truth = baseline["colourfulness_true"]
        ax.axhline(truth, color="black", linestyle=":", label="truth's colourfulness")
        ax.axhspan(0.9 * truth, 1.1 * truth, color="grey", alpha=0.12, label="within 10 % of the truth")
    ax.set_xlabel("test MAE (RGB 0-255, lower is better)")
    ax.set_ylabel("test colourfulness")
    ax.set_title("MAE against colourfulness, one point per evaluation (square: the last)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    _save(fig, path)
    return True
