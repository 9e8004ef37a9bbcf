"""Colorize a test split batch by batch and score it with the metrics of evaluation/metrics.py."""
import functools
import logging

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from evaluation import metrics
from data import color
from data.errors import DatasetError
from data.limits import DEFAULT_MEGAPIXELS, pixel_problem, read_header
from data.pipeline import eval_batches
from models.architecture import STANDALONE, Architecture

log = logging.getLogger(__name__)

# name -> (per-image function, inputs): "lab" compares absolute Lab, "rgb" RGB on the 0-255 scale,
# "pred" / "true" score one image alone.  PSNR is the whole set's, from the mean MSE, as the
# figures of ../shared/datasets/README.md (21.96 dB for no colour on CIFAR-10).
METRICS = {
    "accuracy": (metrics.lab_accuracy, "lab"),
    "mae": (metrics.mae_rgb, "rgb"),
    "psnr": (metrics.mse_rgb, "rgb"),
    "ssim": (metrics.ssim, "rgb"),
    "auc": (metrics.auc_ab, "lab"),
    "colourfulness": (metrics.colourfulness, "pred"),
    "colourfulness_true": (metrics.colourfulness, "true"),
    # As published tables report them (DDColor, ColorFormer, CT2): uint8 images at 256x256, DDColor's
    # colourfulness formula and the mean of per-image PSNRs.
    "colourfulness_256": (metrics.colourfulness_ddcolor, "pred 256"),
    "colourfulness_256_true": (metrics.colourfulness_ddcolor, "true 256"),
    "psnr_256": (metrics.psnr, "rgb 256"),
    # Set-level: the intersection of the colorized and the true a*b* histograms (1: the colours
    # of the truth, used as often). Its sums are the two histograms.
    "palette": (metrics.ab_histogram, "lab"),
}


@tf.function(reduce_retracing=True)
def _to_rgb(L, ab):
    return color.model_output_to_rgb(L, ab) * 255.0


def colorize(model, L):
    """Normalised L batch -> colorized RGB on the 0-255 scale, unrounded (numpy float32).

    The input L joined with the predicted a*b*.  Metrics score this unrounded image, as the
    reference figures do; `np.round(...).astype(np.uint8)` gives the picture.
    """
    return _to_rgb(L, model.predict_ab(L)).numpy()


def no_colour(L):
    """The baseline every table shows: the input L with a* = b* = 0."""
    return _to_rgb(L, tf.zeros_like(tf.concat([L, L], axis=-1))).numpy()


def to_uint8(rgb):
    return np.round(np.clip(rgb, 0, 255)).astype(np.uint8)


def evaluate(model, source, batch_size, limit=None, names=tuple(METRICS), progress=False,
             predict=None, acc_thresh=2.0, pairs=0):
    """Mean of each metric over the first `limit` test images (all when None).

    `predict` maps a normalised L batch to RGB on the 0-255 scale (float, unrounded, as
    `colorize` returns it); default: the model's colorization. `pairs`: also keep the first
    `pairs` (true, colorized) images, shrunk for evaluation/realism.py's classifier test, as
    means["pairs"] = (true, colorized) uint8 arrays.
    """
    predict = predict or (lambda L: colorize(model, L))
    from evaluation.realism import shrink
    sums, count, kept = dict.fromkeys(names, 0.0), 0, ([], [])
    total = len(source) if limit is None else min(limit, len(source))
    for rgb, L, _ in tqdm(eval_batches(source, batch_size, limit), total=-(-total // batch_size),
                          disable=not progress, unit="batch", leave=False):
        true, pred = rgb.numpy(), predict(L)
        _add_scores(sums, true, pred, names, acc_thresh)
        if count < pairs:
            kept[0].append(shrink(true[:pairs - count]))
            kept[1].append(shrink(to_uint8(pred[:pairs - count])))
        count += len(true)
    if count == 0:
        raise DatasetError(f"no usable test images: every one of the {total} test files was skipped "
                           f"(not decodable; see the warnings above)")
    means = _means(sums, count)
    if pairs:
        means["pairs"] = tuple(np.concatenate(k) for k in kept)
    return means


def _add_scores(sums, true, pred, names, acc_thresh):
    """Adds each metric's sum over a batch (true uint8, pred 0-255 floats, N x H x W x 3) to `sums`."""
    inputs = {"rgb": (true, pred), "pred": (pred,), "true": (true,)}
    if any(METRICS[n][1].endswith("256") for n in names):
        true256, pred256 = metrics.at_256(true), metrics.at_256(pred)
        inputs.update({"rgb 256": (true256, pred256), "pred 256": (pred256,), "true 256": (true256,)})
    if any(METRICS[n][1] == "lab" for n in names):
        inputs["lab"] = (color.rgb_to_lab(true).numpy(), color.rgb_to_lab(pred / 255.0).numpy())
    for name in names:
        function, kind = METRICS[name]
        if name == "accuracy":
            function = functools.partial(function, thresh=acc_thresh)
        if name == "palette":
            true_lab, pred_lab = inputs[kind]
            sums[name] = sums[name] + np.stack([function(pred_lab), function(true_lab)])
            continue
        sums[name] += float(np.sum(function(*inputs[kind])))


def _means(sums, count):
    means = {name: value / count for name, value in sums.items() if name != "palette"}
    if "palette" in sums:
        means["palette"] = metrics.histogram_intersection(*sums["palette"])
    if "psnr" in means:
        means["psnr"] = float(metrics.psnr_from_mse(means["psnr"]))
    return means


class _NoColour:
    """A stand-in model for photos.colorize_image: a* = b* = 0 everywhere."""
    architecture = Architecture(STANDALONE, (), 0, None)  # no network, no size multiple

    @staticmethod
    def predict_ab(L):
        return tf.zeros([*L.shape[:3], 2], tf.float32)


def full_resolution_photos(paths, size, max_megapixels=DEFAULT_MEGAPIXELS):
    """The paths whose image is large enough to score at full resolution (SSIM's window); the others
    are named once, from their headers. Files over the pixel limit are left out silently: the
    folder's reader named them."""
    kept = []
    for path in paths:
        header = read_header(path)
        if header is None:  # not readable: evaluate_photos skips it, named when the folder was read
            kept.append(path)
            continue
        width, height = header.width, header.height
        if pixel_problem(width, height, max_megapixels, size):
            continue
        if min(width, height) < metrics.SSIM_MIN_SIDE:
            log.warning("skipping %s: %dx%d is too small to score at full resolution (SSIM needs %dx%d)", path,
                        width, height, metrics.SSIM_MIN_SIDE, metrics.SSIM_MIN_SIDE)
        else:
            kept.append(path)
    return kept


def evaluate_photos(model, paths, size, names=tuple(METRICS), progress=False, acc_thresh=2.0,
                    max_megapixels=DEFAULT_MEGAPIXELS, upsampling="guided"):
    """Mean of each metric over colour photos colorized at their full resolution by colorize.py's
    code path (photos.colorize_image: the network sees the photo with its shorter side at `size`,
    its colours are brought back to the photo by `upsampling` and joined with its own lightness). The
    pixels scored are the uint8 ones colorize.py writes. model None: the no-colour baseline.
    Grey photos and files that do not open are skipped, as in photo folders at the model's size."""
    from inference import photos  # Pillow and the full-resolution path: only here
    sums, count = dict.fromkeys(names, 0.0), 0
    for path in tqdm(paths, disable=not progress, unit="photo", leave=False):
        try:
            true = np.asarray(photos.read_image(path, max_megapixels, size).convert("RGB"))
        except photos.FileError:
            continue  # named once already, when the folder was read
        if np.all(true[..., :1] == true):
            continue
        if min(true.shape[:2]) < metrics.SSIM_MIN_SIDE:
            continue  # named once by full_resolution_photos
        pred = photos.colorize_image(model or _NoColour(), photos.Image.fromarray(true), size, upsampling)
        _add_scores(sums, true[None], np.asarray(pred, np.float32)[None], names, acc_thresh)
        count += 1
    if count == 0:
        raise DatasetError(f"no colour photos among the {len(paths)} files to score at full resolution")
    return _means(sums, count)
