"""The paper's CNN-vs-GAN comparison: metrics table, sample grid and loss curves of checkpoints.

    python test.py --checkpoint checkpoints/cifar10_unet --checkpoint checkpoints/cifar10_gan

Each checkpoint (a file, or a run folder for its latest) says its dataset and architecture.
"""
import functools
import itertools
import json
import sys
from pathlib import Path

from options import changes, defaults_for, flag, stored_options
from options import parse_test_options
from util.quiet import quiet_tensorflow
from util.script import start_script

if __name__ == "__main__":
    start_script()
    parse_test_options()  # --help and bad options answer before TensorFlow is imported
    quiet_tensorflow()

from evaluation import scoring
from evaluation import plots
from data.datasets import load_source, stored_dataset, stored_dataset_path
from data.image_files import find_images, keep_readable
from data.errors import DatasetError
from data.folder import folder_paths
from data.pipeline import file_source, fixed_sample
from models import checkpoint as ckpt
from inference.loading import load_for_inference
from util import atomic


COLUMNS = ("Dataset", "Network", "BatchNorm", "Batch size", "Epochs", "Hours", "MAE", "Accuracy", "PSNR", "SSIM", "AuC",
           "Colourfulness", "Palette", "PSNR 256", "Colourfulness 256", "Classifier")
NETWORK_NAMES = {"gan": "GAN", "unet": "U-Net (CNN)"}
# A row's other columns say these; the weight average is named by the weights it scores.
NAMED_ELSEWHERE = ("batch_size", "g_ema", "lr_decay_steps")


parse_options = parse_test_options


def describe_network(options, state):
    """The network column of a trained checkpoint: its model, its recipe, what the run changed from
    that recipe (options.py's changes) and its origin."""
    network = NETWORK_NAMES.get(options.get("model"), "generator")  # a generator.keras alone has no options
    default, full = defaults_for(options), stored_options(options)
    if default.recipe != "paper":
        network = f"{network}, {default.recipe} recipe"
    if full["generator"] != default.generator:
        network = f"{network}, {full['generator']}"  # another network than its recipe's
    changed = changes(options)
    if "lr_decay_steps" in changed:
        network = f"{network}, rate x{full['lr_decay_rate']:g} per {changed['lr_decay_steps']:,.0f} steps"
    network = ", ".join([network] + [flag(k, v) for k, v in changed.items() if k not in NAMED_ELSEWHERE])
    if options.get("init_generator"):  # train.py --init-generator: the pretraining is counted
        network = f"{network}, G from a {state.get('init_seconds', 0.0) / 3600:.2f} h run"
    return network


def curve_labels(paths, loaded):
    """A legend label per checkpoint: its network, and its run folder where two would read alike."""
    labels = [describe_network(options, state) for _, options, state in loaded]
    return [f"{label} ({path.parent.name})" if labels.count(label) > 1 else label
            for label, path in zip(labels, paths)]


def row(options, network, scores, state=None, bn_statistics="-", weights="raw"):
    trained = state is not None
    if trained:
        network = describe_network(options, state)
    if weights == "ema":  # train.py --g-ema
        network = f"{network}, weight average"
    return {"Dataset": options["dataset"], "Network": network, "BatchNorm": bn_statistics,
            "Batch size": options.get("batch_size", "-") if trained else "-",
            "Epochs": epochs_trained(state, options) if trained else "-",
            "Hours": round(state.get("seconds", 0.0) / 3600, 2) if trained else "-",
            "MAE": round(scores["mae"], 2), "Accuracy": round(100 * scores["accuracy"], 2),
            "PSNR": round(scores["psnr"], 2), "SSIM": round(scores["ssim"], 4),
            "AuC": round(100 * scores["auc"], 2),
            "Colourfulness": f"{scores['colourfulness']:.1f} (truth {scores['colourfulness_true']:.1f})",
            "Palette": round(100 * scores["palette"], 1),
            # As published tables: the mean of per-image PSNRs and DDColor's colourfulness, at 256x256.
            "PSNR 256": round(scores["psnr_256"], 2) if "psnr_256" in scores else "-",
            "Colourfulness 256": (f"{scores['colourfulness_256']:.1f} (truth {scores['colourfulness_256_true']:.1f})"
                                  if "colourfulness_256" in scores else "-"),
            # evaluation/realism.py: the held-out accuracy of a classifier of real against colorized (50 %: alike).
            "Classifier": round(100 * scores["classifier"], 1) if "classifier" in scores else "-"}


def epochs_trained(state, options):
    """Completed epochs, plus the share of the current one (a run stopped by a time budget)."""
    epochs = state["epoch"]
    if state.get("position") and options.get("train_images"):
        epochs += state["position"] / options["train_images"]
    return round(epochs, 2) if epochs != int(epochs) else int(epochs)


def markdown_table(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    units = {"Accuracy": " %", "AuC": " %", "Palette": " %", "Classifier": " %"}
    lines += ["| " + " | ".join(f"{r[c]}{units.get(c, '') if r[c] != '-' else ''}" for c in COLUMNS) + " |"
              for r in rows]
    return "\n".join(lines)


def evaluate_checkpoints(opt):
    paths = [ckpt.resolve_checkpoint(c) for c in opt.checkpoint]
    protocols = ("moving", "batch") if opt.bn_statistics == "both" else (opt.bn_statistics,)
    weights = ("ema", "raw") if opt.weights == "both" else (opt.weights,)
    loaded = [load_for_inference(p, opt.mixed_precision, protocols[0], weights[0]) for p in paths]
    for path, (_, options, _) in zip(paths, loaded):
        if not {"dataset", "image_size"} <= set(options):  # a generator.keras alone
            raise ckpt.CheckpointError(f"{path} does not name its dataset and image size (export.py writes them "
                                       f"into the export.json beside it)")
    first = loaded[0][1]
    for _, options, _ in loaded[1:]:
        if (options["dataset"], options["image_size"]) != (first["dataset"], first["image_size"]):
            raise ckpt.CheckpointError("the checkpoints were trained on different datasets or sizes")
    dataset = opt.dataset or stored_dataset(first, paths[0])
    dataset_path = opt.dataset_path or stored_dataset_path(first, paths[0])
    if opt.dataset == "folder":
        sources = [(dataset, dataset_path, photo_source(dataset_path, first["image_size"], opt.max_megapixels))]
    else:
        # Several training folders (data/folder.py): each one's test split is scored apart.
        parts = folder_paths(dataset_path) if dataset == "folder" else [dataset_path]
        sources = [(f"{dataset} {Path(part).name}" if len(parts) > 1 else dataset, part,
                    load_source(dataset, part, "test", first["image_size"],
                                test_fraction=None if opt.dataset else first.get("test_fraction"),
                                max_megapixels=opt.max_megapixels)) for part in parts]
    rows, baselines = [], []
    for name, path, source in sources:
        scored, baseline = score_source(opt, paths, loaded, weights, protocols, name, path, source)
        rows += scored
        baselines.append(baseline)
    source, baseline = sources[0][2], baselines[0]
    n = min(opt.max_images or len(source), len(source))
    if opt.full_resolution:
        rows += full_resolution_rows(opt, paths, loaded, source.paths[:n], first)
    return paths, loaded, source, rows, baseline


def score_source(opt, paths, loaded, weights, protocols, dataset, dataset_path, source):
    """The table's rows on one test set: no colour, then each checkpoint under each of the
    requested weights and BatchNorm protocols; and the no-colour scores (the curves' baseline)."""
    if len(source) == 0:
        raise DatasetError(f"no test images in {dataset_path}")
    limit = opt.max_images
    n = min(limit or len(source), len(source))
    what = f"the colour photos among {n} images" if opt.dataset == "folder" else f"{n} test images"
    print(f"Evaluating on {what} of {dataset} ({dataset_path})")
    first = loaded[0][1]
    baseline = turing(opt, scoring.evaluate(None, source, opt.batch_size, limit, progress=opt.progress,
                                               predict=scoring.no_colour, acc_thresh=opt.acc_thresh,
                                               pairs=opt.classifier_images))
    rows = [row(first, "no colour (a* = b* = 0)", baseline)]
    rows[-1]["Classifier curve"] = baseline.get("classifier_curve")
    for (model, options, state), path in zip(loaded, paths):
        scored = set()
        for wanted, protocol in itertools.product(weights, protocols):
            if (wanted, protocol) != (weights[0], protocols[0]):
                model = load_for_inference(path, opt.mixed_precision, protocol, wanted)[0]
            if (model.weights_used, protocol) in scored:  # --weights both, a checkpoint without an average
                continue
            scored.add((model.weights_used, protocol))
            # Batch statistics depend on the batch: the reference's, at its training batch size.
            batch_size = options["batch_size"] if protocol == "batch" else opt.batch_size
            scores = turing(opt, scoring.evaluate(model, source, batch_size, limit, progress=opt.progress,
                                                     acc_thresh=opt.acc_thresh, pairs=opt.classifier_images))
            rows.append(row(options, None, scores, state, protocol, model.weights_used))
            rows[-1]["Checkpoint"] = str(path)
            rows[-1]["Step"] = state["step"]
            rows[-1]["Classifier curve"] = scores.get("classifier_curve")
    for r in rows:
        r["Dataset"] = dataset
    return rows, baseline


def turing(opt, scores):
    """The scores with the classifier test's accuracy and curve (evaluation/realism.py), when it has
    its pairs (test.py --classifier-images; 0: none)."""
    real, colorized = scores.pop("pairs", (None, None))
    if real is not None and len(real) >= 4:
        from evaluation.realism import classifier_test
        scores["classifier"], scores["classifier_curve"] = classifier_test(real, colorized, seed=opt.seed)
    return scores


def full_resolution_rows(opt, paths, loaded, photo_paths, first):
    """The table again with each photo colorized at its full resolution (colorize.py's path), for
    each --upsampling asked for."""
    print("Scoring the same photos at full resolution, as colorize.py writes them")
    photo_paths = scoring.full_resolution_photos(photo_paths, first["image_size"], opt.max_megapixels)
    score = functools.partial(scoring.evaluate_photos, paths=photo_paths, size=first["image_size"],
                              progress=opt.progress, acc_thresh=opt.acc_thresh, max_megapixels=opt.max_megapixels)
    rows = [row(first, "no colour (a* = b* = 0)", score(None))]
    rows[-1]["Dataset"] = "folder, full resolution"
    for upsampling in ("guided", "bilinear") if opt.upsampling == "both" else (opt.upsampling,):
        for (model, options, state), path in zip(loaded, paths):
            if opt.bn_statistics == "batch":  # one photo at a time: the moving statistics
                model = load_for_inference(path, opt.mixed_precision, "moving", model.weights_used)[0]
            rows.append(row(options, None, score(model, upsampling=upsampling), state, "moving", model.weights_used))
            rows[-1]["Checkpoint"], rows[-1]["Step"] = str(path), state["step"]
            rows[-1]["Dataset"] = f"folder, full resolution, {upsampling} upsampling"
    return rows


def photo_source(folder, image_size, max_megapixels):
    """Every readable image under `folder` (any depth), grey ones dropped: your own test photos."""
    if not Path(folder).is_dir():
        raise DatasetError(f"photo folder {folder} not found")
    paths, _ = keep_readable(find_images(folder))
    if not paths:
        raise DatasetError(f"no images in {folder}")
    return file_source(paths, image_size, drop_grayscale=True, max_megapixels=max_megapixels)


def output_folder(opt):
    return Path(opt.output) if opt.output else ckpt.resolve_checkpoint(opt.checkpoint[0]).parent


def write_outputs(opt, paths, loaded, source, rows, baseline):
    out = output_folder(opt)
    table = markdown_table(rows)
    atomic.write_text(out / "results.md", table + "\n")
    atomic.write_text(out / "results.json", json.dumps(rows, indent=2) + "\n")
    print(table)

    rgb, L, _ = fixed_sample(source, opt.sample_size, opt.seed)
    colorized = [scoring.to_uint8(scoring.colorize(model, L)) for model, _, _ in loaded]
    grid = plots.triplet_grid(rgb.numpy(), colorized)
    plots.save_image(grid, out / "samples.png", min_size=768)

    labels = curve_labels(paths, loaded)
    logs = {label: p.parent / "log.csv" for label, p in zip(labels, paths) if (p.parent / "log.csv").exists()}
    written = ["results.md", "results.json", "samples.png"]
    if logs:
        plots.plot_loss_curves(logs, out / "loss.png")
        written.append("loss.png")
    evals = {label: p.parent / "eval.csv" for label, p in zip(labels, paths) if (p.parent / "eval.csv").exists()}
    if plots.plot_quality_curves(evals, out / "quality.png", baseline):
        written.append("quality.png")
    if plots.plot_colour_tradeoff(evals, out / "tradeoff.png", baseline):
        written.append("tradeoff.png")
    if plots.plot_classifier_curves(rows, out / "classifier.png"):
        written.append("classifier.png")
    print(f"Wrote {', '.join(str(out / name) for name in written)}")


def main(argv=None):
    opt = parse_options(argv)
    try:
        atomic.writable_folder(output_folder(opt))  # before the evaluation, not after it
        write_outputs(opt, *evaluate_checkpoints(opt))
    except (DatasetError, ckpt.CheckpointError, atomic.NotWritable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk after the evaluation: each file is whole or absent (util/atomic.py)
        print(f"error: cannot write the results ({e.strerror or e}): {e.filename or output_folder(opt)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
