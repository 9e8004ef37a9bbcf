"""The options of train.py, test.py and colorize.py in one place: the flags they share are defined
once (checkpoint, precision, progress), with one meaning. serve.py and export.py use the shared ones.

train.py's options are generated from config.TrainingConfig, one per field; an option left unset
takes its dataset's preset or its recipe's. The resolved configuration is stored in every
checkpoint, so test.py and colorize.py need nothing but it.

No TensorFlow is imported here, so that `--help` and a bad option answer at once: the scripts
parse their command line before they import anything heavy.
"""
import argparse
import dataclasses
from pathlib import Path

from config import MIXED_PRECISION_HELP, TrainingConfig
from data import limits
from data.datasets import DATASETS
from photo_io import FORMATS


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is two lines: a one-line usage pointing at --help, and the error."""

    def error(self, message):
        self.exit(2, f"usage: {self.prog} [options] (see {self.prog} --help)\n{self.prog}: error: {message}\n")


MAX_COLORIZE_SIZE = 8192  # colorize.py --size: the network's input at 8192 px already takes tens of GB


# ------------------------------------------------------------------------------ shared flags
# The photo model that ships with the code (pretrained/photo/README.md): colorize.py and serve.py
# use it when no --checkpoint is given.
SHIPPED_MODEL = Path(__file__).resolve().parent / "pretrained" / "photo" / "generator.keras"


def add_checkpoint(p, several=False, shipped=False):
    if shipped:
        p.add_argument("--checkpoint", help="checkpoint .h5, run folder (its latest) or exported generator.keras "
                                            "(default: the shipped photo model, pretrained/photo/)")
    elif several:
        p.add_argument("--checkpoint", action="append", required=True,
                       help="checkpoint .h5 or run folder, for its latest (repeat to compare models)")
    else:
        p.add_argument("--checkpoint", required=True, help="checkpoint .h5 or run folder, for its latest")


def add_mixed_precision(p, training=False):
    """One meaning everywhere: 16-bit compute (bfloat16 on CPUs, float16 with loss scaling on GPUs),
    variables, last layers and losses float32. Training defaults to float32; inference to the
    precision the checkpoint was trained in."""
    default = "default: float32" if training else "default: the precision the checkpoint was trained in"
    p.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=False if training else None,
                   help=f"{MIXED_PRECISION_HELP} ({default})")


def add_weights(p, both=False):
    choices = ("ema", "raw", "both") if both else ("ema", "raw")
    p.add_argument("--weights", default="ema", choices=choices,
                   help="ema: the average of the generator's weights where the checkpoint has one (train.py "
                        "--g-ema), else the trained weights; raw: the trained weights"
                        + ("; both: a row for each" if both else ""))


def add_max_megapixels(p):
    """The pixel limit of every image reader (data/limits.py), one default everywhere."""
    p.add_argument("--max-megapixels", type=float, default=limits.DEFAULT_MEGAPIXELS, help=limits.HELP)


def check_max_megapixels(opt, p):
    if not opt.max_megapixels > 0:  # also refuses nan
        p.error("--max-megapixels must be positive")


def add_progress(p):
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


# --------------------------------------------------------------------------------- train.py
def build_parser():
    """train.py's options: one per field of config.TrainingConfig, with its default and help."""
    p = Parser(description="Train the colorization cGAN or its U-Net baseline.")
    for field in dataclasses.fields(TrainingConfig):
        flag = "--" + field.name.replace("_", "-")
        kwargs = dict(default=field.default, help=field.metadata["help"], **field.metadata["argparse"])
        if field.type is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            p.add_argument(flag, type=field.type, **kwargs)
    return p


def parse_train_options(argv=None):
    """The resolved training configuration; a bad option exits with a one-line usage and the error."""
    parser = build_parser()
    try:
        return TrainingConfig(**vars(parser.parse_args(argv))).resolved().check()
    except ValueError as e:
        parser.error(str(e))


# ---------------------------------------------------------------------------------- test.py
def test_parser():
    p = Parser(description="Evaluate colorization checkpoints on their test split.")
    add_checkpoint(p, several=True)
    p.add_argument("--dataset-path", help="overrides the dataset path stored in the checkpoint")
    p.add_argument("--dataset", choices=sorted(DATASETS),
                   help="score on another dataset than the checkpoint's (with --dataset-path); folder: every "
                        "colour photo under --dataset-path, any depth, resized and cropped to the model's size")
    add_upsampling(p, both=True)
    p.add_argument("--full-resolution", action="store_true",
                   help="with --dataset folder: also score every photo at its full resolution, colorized as "
                        "colorize.py does (the network at the model's size, its colours resized to the photo)")
    p.add_argument("--output", help="output folder (default: beside the first checkpoint)")
    p.add_argument("--max-images", type=int, help="evaluate only the first N test images")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--acc-thresh", type=float, default=2.0, help="accuracy threshold (paper: 2)")
    p.add_argument("--classifier-images", type=int, default=2000,
                   help="photos of each test set for the automatic Turing test (a classifier of real against "
                        "colorized trained on half of them, scored on the other half; 0: none)")
    p.add_argument("--sample-size", type=int, default=8, help="test images in the sample grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample grid's choice of images")
    add_mixed_precision(p)
    p.add_argument("--bn-statistics", default="moving", choices=("moving", "batch", "both"),
                   help="BatchNorm at inference: moving averages (Keras' rule), or each test batch's own "
                        "statistics in batches of the training batch size (the reference code's protocol, "
                        "behind the paper's figures); both: a row for each")
    add_weights(p, both=True)
    add_max_megapixels(p)
    add_progress(p)
    return p


def parse_test_options(argv=None):
    p = test_parser()
    opt = p.parse_args(argv)
    if opt.dataset and not opt.dataset_path:
        p.error("--dataset needs --dataset-path")
    if opt.full_resolution and opt.dataset != "folder":
        p.error("--full-resolution scores photo folders: use it with --dataset folder --dataset-path DIR")
    if opt.max_images is not None and opt.max_images <= 0:
        p.error("--max-images must be positive")
    if opt.classifier_images < 0:
        p.error("--classifier-images must not be negative (0: no classifier test)")
    if opt.batch_size <= 0 or opt.acc_thresh <= 0:
        p.error("--batch-size and --acc-thresh must be positive")
    check_max_megapixels(opt, p)
    return opt


# ------------------------------------------------------------------------------ colorize.py
def colorize_parser():
    p = Parser(description="Colorize photos at full resolution (the shipped photo model, or a checkpoint).")
    p.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) or glob patterns")
    add_checkpoint(p, shipped=True)
    p.add_argument("--output", default="colorized",
                   help="output folder, mirroring the input folders (default: colorized/ here)")
    p.add_argument("--size", type=int,
                   help="shorter side the network sees (default: the image size it was trained at)")
    p.add_argument("--format", default="png", choices=FORMATS, help="output format (default png)")
    add_upsampling(p)
    p.add_argument("--side-by-side", action="store_true",
                   help="also write <name>_side_by_side: [input | colorized]")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    add_mixed_precision(p)
    add_weights(p)
    add_max_megapixels(p)
    add_progress(p)
    return p


def add_upsampling(p, both=False):
    p.add_argument("--upsampling", default="guided", choices=("guided", "bilinear") + (("both",) if both else ()),
                   help="how the network's colours reach the full resolution: guided by the photo's lightness, "
                        "so that they stop at its edges (default), or a plain bilinear resize"
                        + ("; both: a full-resolution table for each" if both else ""))


def shipped_model_unless(checkpoint, parser):
    """--checkpoint, or the shipped photo model where none was given."""
    if checkpoint is not None:
        return checkpoint
    if not SHIPPED_MODEL.is_file():
        parser.error(f"no --checkpoint given and the shipped photo model {SHIPPED_MODEL} is missing")
    return str(SHIPPED_MODEL)


def parse_colorize_options(argv=None):
    p = colorize_parser()
    opt = p.parse_args(argv)
    opt.checkpoint = shipped_model_unless(opt.checkpoint, p)
    if opt.size is not None and not 0 < opt.size <= MAX_COLORIZE_SIZE:
        p.error(f"--size must be between 1 and {MAX_COLORIZE_SIZE} pixels")
    check_max_megapixels(opt, p)
    return opt
