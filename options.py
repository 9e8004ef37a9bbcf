"""The options of train.py, test.py and colorize.py in one place: the flags they share are defined
once (checkpoint, precision, progress), with one meaning. serve.py and export.py use the shared ones.

train.py: an option left unset takes its dataset's preset (the reference README's runs); the
resolved options are stored in every checkpoint, so test.py and colorize.py need nothing but it.

No TensorFlow is imported here, so that `--help` and a bad option answer at once: the scripts
parse their command line before they import anything heavy.
"""
import argparse
import math
import os
from pathlib import Path

from data.datasets import DATASETS
from photo_io import FORMATS
from models.presets import PRESETS, downsampling_factor, folder_preset, valid_sizes_near
from models.registry import DEFAULT_IMPLEMENTATION, DISCRIMINATORS, GENERATORS, IMPLEMENTATIONS, MODELS
from util.cluster import STRATEGY_NAMES, check_tf_config

# Reference README: CIFAR-10 at batch 128 for 200 epochs with flips, Places365 at batch 16 for 10
# epochs with label smoothing; decay steps 1e4 and 5e5 (docs/recipe.md, "Losses and schedule").
DATASET_PRESETS = {
    "cifar10": dict(image_size=32, batch_size=128, epochs=200, lr_decay_steps=1e4, augment=True,
                    label_smoothing=False, sample_interval=500),
    "places365": dict(image_size=256, batch_size=16, epochs=10, lr_decay_steps=5e5, augment=False,
                      label_smoothing=True, sample_interval=1000),
    # Seed 003 trains on its own folders at 224x224; flowers and frames benefit from flips.
    "folder": dict(image_size=256, batch_size=16, epochs=100, lr_decay_steps=1e4, augment=True,
                   label_smoothing=False, sample_interval=500),
}
# --recipe: the paper's (the default), or a named faster one, measured in docs/time_to_quality.md.
# A recipe only sets defaults: an option given on the command line wins.
RECIPES = {
    "paper": dict(zero_head=False, g_ema=0.0),
    "fast": dict(zero_head=True, g_ema=0.999),
    # Photographs on a CPU: the fast recipe in the half-width U-Net at 128x128, chosen at equal CPU
    # time on Imagenette (docs/photos.md); the rate decays over 3e4 steps, not 1e4, so that a
    # run of a few hours (~10 steps/s at batch 16) is not spent at a vanishing rate.
    "photo": dict(zero_head=True, g_ema=0.999, generator="unet-narrow", image_size=128, lr_decay_steps=3e4),
}
PHOTO_DATASETS = ("folder", "places365")
# Options that decide the variables: a checkpoint refuses to resume under different values.
ARCHITECTURE_OPTIONS = ("dataset", "model", "image_size", "mixed_precision")


MAX_COLORIZE_SIZE = 8192  # colorize.py --size: the network's input at 8192 px already takes tens of GB


def _recipe_flags(name):
    flag = {True: "--{}", False: "--no-{}"}
    return "; ".join(flag[v].format(k.replace("_", "-")) if isinstance(v, bool) else f"--{k.replace('_', '-')} {v}"
                     for k, v in RECIPES[name].items())


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
                   help="bfloat16 on CPUs (fast with AVX-512 BF16 or AMX), float16 with loss scaling on GPUs; "
                        f"the last layers and the losses stay float32 ({default})")


def add_weights(p, both=False):
    choices = ("ema", "raw", "both") if both else ("ema", "raw")
    p.add_argument("--weights", default="ema", choices=choices,
                   help="ema: the average of the generator's weights where the checkpoint has one (train.py "
                        "--g-ema), else the trained weights; raw: the trained weights"
                        + ("; both: a row for each" if both else ""))


def add_progress(p):
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


# --------------------------------------------------------------------------------- train.py
def build_parser():
    p = argparse.ArgumentParser(description="Train the colorization cGAN or its U-Net baseline.")
    a = p.add_argument
    a("--dataset", default="cifar10", choices=sorted(DATASETS), help="data source")
    a("--dataset-path", help="dataset folder (default: datasets/<dataset>)")
    a("--checkpoints-path", help="run folder (default: checkpoints/<dataset>_<model>)")
    a("--model", default="gan", choices=MODELS, help="gan: the paper's cGAN; unet: the CNN baseline")
    a("--image-size", type=int, help="square training size (cifar10 32, places365 256, folder 256)")
    a("--batch-size", type=int, help="global batch size (cifar10 128, places365 16, folder 16)")
    a("--epochs", type=int, help="epochs to train (cifar10 200, places365 10, folder 100)")
    a("--max-steps", type=int, help="stop after this many steps in total (smoke runs, benchmarks)")
    a("--max-hours", type=float,
      help="stop after this many hours of training (evaluations not counted): equal-time comparisons")
    a("--lr", type=float, default=3e-4, help="generator learning rate; D's is --d-lr-factor times it")
    a("--d-lr-factor", type=float, default=0.1,
      help="the discriminator's learning rate as a multiple of the generator's (the reference: 0.1)")
    a("--g-steps", type=int, default=2,
      help="GAN: generator steps on each batch after the discriminator's one (the reference: 2)")
    a("--lr-decay-rate", type=float, default=0.1, help="factor per --lr-decay-steps (continuous)")
    a("--lr-decay-steps", type=float, help="steps per decay factor (cifar10 1e4, places365 5e5)")
    a("--beta1", type=float, default=0.0, help="Adam beta1 (the reference uses 0)")
    a("--l1-weight", type=float, default=100.0, help="lambda, the weight of the L1 term")
    a("--label-smoothing", action=argparse.BooleanOptionalAction,
      help="one-sided label smoothing: real target 0.9 (places365: on)")
    a("--augment", action=argparse.BooleanOptionalAction, help="random horizontal flips (cifar10: on)")
    a("--init", default="reference", choices=["reference", "glorot"],
      help="kernel initializer: the reference code's VarianceScaling(1, fan_in, truncated normal), "
           "or Keras' default Glorot uniform")
    a("--generator", choices=list(GENERATORS),
      help="generator network (models/registry.py; default: unet, the paper's; --recipe photo: unet-narrow)")
    a("--discriminator", default="patchgan", choices=list(DISCRIMINATORS),
      help="discriminator network (models/registry.py)")
    a("--implementation", default=DEFAULT_IMPLEMENTATION, choices=IMPLEMENTATIONS,
      help="lowmem: the memory-saving layers; plain: Keras' own layers. Same variables and maths: "
           "a checkpoint resumes and loads in either")
    a("--recipe", default="paper", choices=list(RECIPES),
      help="paper: the paper's training recipe; fast: the changes that made learning faster in "
           "docs/time_to_quality.md (" + _recipe_flags("fast") + "); photo: for photographs, "
           "docs/photos.md (" + _recipe_flags("photo") + "); options given explicitly win")
    a("--zero-head", action=argparse.BooleanOptionalAction,
      help="start the colour head's kernel at zero: the untrained U-Net predicts grey, not noise "
           "(paper recipe: off; fast: on)")
    a("--init-generator", metavar="CHECKPOINT",
      help="a new run's generator starts as this run's or checkpoint's (same generator architecture): "
           "the GAN fine-tunes a trained U-Net. Its training seconds count in this run's clock")
    a("--g-ema", type=float, metavar="DECAY",
      help="also keep an exponential moving average of the generator's weights, decay DECAY per step "
           "(e.g. 0.999; warmed up as min(DECAY, (1+n)/(10+n))), saved in each checkpoint; test.py, "
           "colorize.py, serve.py and export.py use it (0: off; paper recipe: 0)")
    a("--dropout", type=float, default=0.5,
      help="rate of the decoder's dropout layers (reference: 0.5, though its dropout never ran)")
    a("--seed", type=int, default=0, help="seed of weights, data order and flips")
    a("--save-interval", type=int, default=1000, help="steps between checkpoints (also each epoch)")
    a("--keep-checkpoints", type=int, default=3, help="how many recent checkpoints to keep")
    a("--sample-interval", type=int, help="steps between sample grids")
    a("--sample-size", type=int, default=8, help="test images in each sample grid")
    a("--log-interval", type=int, default=10, help="steps between CSV / TensorBoard log rows")
    a("--eval-images", type=int, default=1000,
      help="test images for the accuracy / MAE at each evaluation (0: none, -1: all)")
    a("--eval-interval", type=int,
      help="steps between evaluations (default: at each epoch's end only; always at the end of the run)")
    a("--test-fraction", type=float, default=0.1, help="folder: held-out share when no test/ subfolder")
    add_mixed_precision(p, training=True)
    a("--strategy", default="auto", choices=STRATEGY_NAMES,
      help="one: one device; mirrored: all local GPUs; multiworker: several machines (TF_CONFIG); "
           "auto: mirrored with more than one GPU, else one")
    a("--worker-timeout", type=float, default=300.0,
      help="multiworker: give up when the other workers do not answer for this many seconds (they did "
           "not start, or died); 0: wait forever. Ctrl-C / SIGTERM stop a waiting worker within 10 s")
    a("--sync-bn", action=argparse.BooleanOptionalAction,
      help="BatchNorm statistics over all replicas (on when there is more than one)")
    a("--xla", action="store_true", help="compile the training step with XLA (helps on GPUs only)")
    add_progress(p)
    return p


def parse_train_options(argv=None):
    """Parses and resolves the options; errors exit with one line (argparse's usage + message)."""
    parser = build_parser()
    opt = parser.parse_args(argv)
    if opt.recipe == "photo" and opt.dataset not in PHOTO_DATASETS:
        parser.error(f"--recipe photo is for photographs: --dataset {' or '.join(PHOTO_DATASETS)}")
    for key, value in {"generator": "unet", **DATASET_PRESETS[opt.dataset], **RECIPES[opt.recipe]}.items():
        if getattr(opt, key) is None:
            setattr(opt, key, value)
    # Absolute, as stored in the checkpoints: test.py finds the data from any working directory.
    opt.dataset_path = os.path.abspath(opt.dataset_path or Path("datasets") / opt.dataset)
    if opt.init_generator:
        opt.init_generator = os.path.abspath(opt.init_generator)
    opt.checkpoints_path = opt.checkpoints_path or str(Path("checkpoints") / f"{opt.dataset}_{opt.model}")
    try:
        check_options(opt)
    except ValueError as e:
        parser.error(str(e))
    return opt


def check_options(opt):
    for name in ("batch_size", "epochs", "save_interval", "sample_interval", "sample_size", "log_interval",
                 "keep_checkpoints", "lr_decay_steps", "lr", "d_lr_factor", "g_steps"):
        if not getattr(opt, name) > 0 or not math.isfinite(getattr(opt, name)):  # refuses nan and inf
            raise ValueError(f"--{name.replace('_', '-')} must be positive and finite")
    if not 0 < opt.lr_decay_rate <= 1:
        raise ValueError("--lr-decay-rate must be in (0, 1] (1: no decay)")
    if not 0 <= opt.beta1 < 1:
        raise ValueError("--beta1 must be in [0, 1)")
    if not (opt.l1_weight >= 0 and math.isfinite(opt.l1_weight)):
        raise ValueError("--l1-weight must be finite and not negative")
    for name in ("max_steps", "max_hours", "eval_interval"):
        value = getattr(opt, name)
        if value is not None and not value > 0:  # also refuses nan
            raise ValueError(f"--{name.replace('_', '-')} must be positive and finite")
    if opt.strategy == "multiworker":
        check_tf_config()
    if not (opt.worker_timeout >= 0 and math.isfinite(opt.worker_timeout)):
        raise ValueError("--worker-timeout must be finite and not negative (0: wait forever)")
    if not 0 <= opt.g_ema < 1:
        raise ValueError("--g-ema must be in [0, 1) (0: no weight average; typical: 0.999)")
    if not 0 <= opt.dropout < 1:
        raise ValueError("--dropout must be in [0, 1)")
    if not 0 < opt.test_fraction < 1:
        raise ValueError("--test-fraction must be between 0 and 1")
    if opt.dataset == "cifar10" and opt.image_size != 32:
        raise ValueError("CIFAR-10 images are 32x32: --image-size must be 32 (or left unset)")
    encoder = generator_preset(opt.dataset, opt.image_size)["encoder"]
    factor = downsampling_factor(encoder)
    if opt.image_size % factor or opt.image_size < factor:
        near = " or ".join(str(s) for s in valid_sizes_near(opt.image_size, factor))
        raise ValueError(f"the U-Net cannot take --image-size {opt.image_size}: it needs a "
                         f"multiple of {factor}; the nearest sizes are {near}")


def generator_preset(dataset, image_size):
    return folder_preset(image_size) if dataset == "folder" else PRESETS[dataset]


# ---------------------------------------------------------------------------------- test.py
def test_parser():
    p = argparse.ArgumentParser(description="Evaluate colorization checkpoints on their test split.")
    add_checkpoint(p, several=True)
    p.add_argument("--dataset-path", help="overrides the dataset path stored in the checkpoint")
    p.add_argument("--dataset", choices=sorted(DATASETS),
                   help="score on another dataset than the checkpoint's (with --dataset-path); folder: every "
                        "colour photo under --dataset-path, any depth, resized and cropped to the model's size")
    p.add_argument("--full-resolution", action="store_true",
                   help="with --dataset folder: also score every photo at its full resolution, colorized as "
                        "colorize.py does (the network at the model's size, its colours resized to the photo)")
    p.add_argument("--output", help="output folder (default: beside the first checkpoint)")
    p.add_argument("--max-images", type=int, help="evaluate only the first N test images")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--acc-thresh", type=float, default=2.0, help="accuracy threshold (paper: 2)")
    p.add_argument("--sample-size", type=int, default=8, help="test images in the sample grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample grid's choice of images")
    add_mixed_precision(p)
    p.add_argument("--bn-statistics", default="moving", choices=("moving", "batch", "both"),
                   help="BatchNorm at inference: moving averages (Keras' rule), or each test batch's own "
                        "statistics in batches of the training batch size (the reference code's protocol, "
                        "behind the paper's figures); both: a row for each")
    add_weights(p, both=True)
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
    if opt.batch_size <= 0 or opt.acc_thresh <= 0:
        p.error("--batch-size and --acc-thresh must be positive")
    return opt


# ------------------------------------------------------------------------------ colorize.py
def colorize_parser():
    p = argparse.ArgumentParser(description="Colorize photos at full resolution (the shipped photo model, or a checkpoint).")
    p.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) or glob patterns")
    add_checkpoint(p, shipped=True)
    p.add_argument("--output", default="colorized",
                   help="output folder, mirroring the input folders (default: colorized/ here)")
    p.add_argument("--size", type=int,
                   help="shorter side the network sees (default: the image size it was trained at)")
    p.add_argument("--format", default="png", choices=FORMATS, help="output format (default png)")
    p.add_argument("--side-by-side", action="store_true",
                   help="also write <name>_side_by_side: [input | colorized]")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    add_mixed_precision(p)
    add_weights(p)
    add_progress(p)
    return p


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
    return opt
