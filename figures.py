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
    row of test.py's table (models/realism.py; 50 %: real and colorized alike). False when no row
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


def photo_grid(paths, model, size, side=224, per_row=2):
    """uint8 grid of photos as [grey | original | colorized], each colorized at its full resolution
    as colorize.py does (the network sees it at `size`), then shown at side x side."""
    import photos  # TensorFlow: only here

    def square(image):
        image = image.convert("RGB")
        crop = min(image.size)
        left, top = (image.width - crop) // 2, (image.height - crop) // 2
        return np.asarray(image.crop((left, top, left + crop, top + crop)).resize((side, side), Image.LANCZOS))

    originals, colorized = [], []
    for path in paths:
        image = photos.read_image(path)
        originals.append(square(image))
        colorized.append(square(photos.colorize_image(model, image, size)))
    return triplet_grid(originals, [colorized], per_row=per_row)


def busiest_crop(grey, crop):
    """(top, left) of the crop x crop window of a 2-D image with the most lightness edges."""
    from scipy import ndimage
    edges = np.hypot(ndimage.sobel(grey.astype(np.float32), 0), ndimage.sobel(grey.astype(np.float32), 1))
    density = ndimage.uniform_filter(edges, crop, mode="constant")
    half = crop // 2
    inner = density[half:grey.shape[0] - half + 1, half:grey.shape[1] - half + 1]
    top, left = np.unravel_index(np.argmax(inner), inner.shape)
    return int(top), int(left)


def upsampling_crops(paths, model, size, crop=160, zoom=2):
    """uint8 grid, a photo per row: [original | colours resized bilinearly | colours guided by the
    lightness] on the crop x crop window of the photo's full resolution with the most edges,
    enlarged `zoom` times (nearest), where the colours of the network's scale meet the photo's."""
    import photos  # TensorFlow: only here
    rows = []
    for path in paths:
        image = photos.read_image(path).convert("RGB")
        grey = np.asarray(image.convert("L"))
        top, left = busiest_crop(grey, min(crop, *grey.shape))
        window = (left, top, left + min(crop, image.width), top + min(crop, image.height))
        cells = [image] + [
            photos.colorize_image(model, image, size, upsampling) for upsampling in ("bilinear", "guided")]
        cells = [np.asarray(c.convert("RGB").crop(window).resize((zoom * (window[2] - window[0]),
                                                                  zoom * (window[3] - window[1])), Image.NEAREST))
                 for c in cells]
        rows.append(np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in cells], 1))
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


def page_screenshot(output, paths, checkpoint, width=1000):
    """A screenshot of serve.py's colorize page after these photos were dropped on it: the server
    in this process on a free local port, the page in Debian's chromium (playwright)."""
    import shutil
    import socket
    import threading
    import time

    import uvicorn
    from playwright.sync_api import sync_playwright

    import serve
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(serve.create_app(checkpoint), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": width, "height": 700})
            page.goto(f"http://127.0.0.1:{port}/")
            page.set_input_files("#files", [str(path) for path in paths])
            page.wait_for_function(f"document.querySelectorAll('.result.done').length == {len(paths)}",
                                   timeout=300000)
            page.screenshot(path=str(output), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join()


def main(argv=None):
    """python figures.py photos.png PHOTO... [--checkpoint C] [--sample N --seed S]: a photo_grid of
    the given photos (folders: N of their photos drawn with seed S), by the shipped model by default;
    --page: a screenshot of serve.py's page with them dropped on it instead."""
    from options import SHIPPED_MODEL, Parser
    p = Parser(description="A grid of photos [grey | original | colorized].")
    p.add_argument("output")
    p.add_argument("inputs", nargs="+", help="photos, or folders to draw --sample photos from")
    p.add_argument("--checkpoint", default=str(SHIPPED_MODEL))
    p.add_argument("--sample", type=int, default=4, help="photos drawn from each folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-row", type=int, default=2)
    p.add_argument("--page", action="store_true", help="a screenshot of serve.py's page (chromium)")
    p.add_argument("--upsampling", action="store_true",
                   help="[original | bilinear | guided] crops at full resolution where the photo has the most edges")
    opt = p.parse_args(argv)
    from data.image_files import find_images
    from models.inference import load_for_inference
    paths = []
    for given in map(Path, opt.inputs):
        found = sorted(find_images(given)) if given.is_dir() else [given]
        chosen = np.random.default_rng(opt.seed).choice(len(found), min(opt.sample, len(found)), replace=False)
        paths += [found[i] for i in sorted(chosen)] if given.is_dir() else found
    if opt.page:
        page_screenshot(opt.output, paths, opt.checkpoint)
        print(f"{opt.output}: {', '.join(str(p) for p in paths)}")
        return
    model = load_for_inference(opt.checkpoint)[0]
    if opt.upsampling:
        save_image(upsampling_crops(paths, model, model.config["image_size"]), opt.output)
        print(f"{opt.output}: {', '.join(str(p) for p in paths)}")
        return
    save_image(photo_grid(paths, model, model.config["image_size"], per_row=opt.per_row), opt.output)
    print(f"{opt.output}: {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    from util.quiet import quiet_tensorflow
    from util.script import start_script
    start_script()
    quiet_tensorflow()
    main()
