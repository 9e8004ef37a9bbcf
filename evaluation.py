"""Colorize a test split batch by batch and score it with the metrics of metrics.py."""
import functools

import numpy as np
import tensorflow as tf
from tqdm import tqdm

import metrics
from data import color
from data.errors import DatasetError
from data.pipeline import eval_batches

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
             predict=None, acc_thresh=2.0):
    """Mean of each metric over the first `limit` test images (all when None).

    `predict` maps a normalised L batch to RGB on the 0-255 scale (float, unrounded, as
    `colorize` returns it); default: the model's colorization.
    """
    predict = predict or (lambda L: colorize(model, L))
    sums, count = dict.fromkeys(names, 0.0), 0
    total = len(source) if limit is None else min(limit, len(source))
    for rgb, L, _ in tqdm(eval_batches(source, batch_size, limit), total=-(-total // batch_size),
                          disable=not progress, unit="batch", leave=False):
        true, pred = rgb.numpy(), predict(L)
        inputs = {"rgb": (true, pred), "pred": (pred,), "true": (true,)}
        if any(METRICS[n][1] == "lab" for n in names):
            inputs["lab"] = (color.rgb_to_lab(true).numpy(), color.rgb_to_lab(pred / 255.0).numpy())
        for name in names:
            function, kind = METRICS[name]
            if name == "accuracy":
                function = functools.partial(function, thresh=acc_thresh)
            sums[name] += float(np.sum(function(*inputs[kind])))
        count += len(true)
    if count == 0:
        raise DatasetError(f"no usable test images: every one of the {total} test files was skipped "
                           f"(not decodable; see the warnings above)")
    means = {name: value / count for name, value in sums.items()}
    if "psnr" in means:
        means["psnr"] = float(metrics.psnr_from_mse(means["psnr"]))
    return means
