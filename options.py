"""Every option of train.py in one place, with per-dataset presets (the reference README's runs).

An option left unset takes its dataset's preset; the resolved options are stored in every
checkpoint, so `test.py` and `colorize.py` need nothing but the checkpoint.
"""
import argparse
import math
import os
from pathlib import Path

from data.datasets import DATASETS
from distribute import STRATEGIES, check_tf_config
from models.colorization import MODELS
from models.registry import DEFAULT_IMPLEMENTATION, DISCRIMINATORS, GENERATORS, IMPLEMENTATIONS
from models.generator import PRESETS, downsampling_factor, folder_preset, valid_sizes_near

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
    "paper": dict(zero_head=False),
    "fast": dict(zero_head=True),
}
# Options that decide the variables: a checkpoint refuses to resume under different values.
ARCHITECTURE_OPTIONS = ("dataset", "model", "image_size", "mixed_precision")


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
    a("--lr", type=float, default=3e-4, help="generator learning rate; D uses a tenth")
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
    a("--generator", default="unet", choices=list(GENERATORS), help="generator network (models/registry.py)")
    a("--discriminator", default="patchgan", choices=list(DISCRIMINATORS),
      help="discriminator network (models/registry.py)")
    a("--implementation", default=DEFAULT_IMPLEMENTATION, choices=IMPLEMENTATIONS,
      help="lowmem: the memory-saving layers; plain: Keras' own layers. Same variables and maths: "
           "a checkpoint resumes and loads in either")
    a("--recipe", default="paper", choices=list(RECIPES),
      help="paper: the paper's training recipe; fast: the changes that made learning faster in "
           "docs/time_to_quality.md (" + "; ".join(f"--{k.replace('_', '-')} {v}" for k, v in RECIPES["fast"].items())
           + "); options given explicitly win")
    a("--zero-head", action=argparse.BooleanOptionalAction,
      help="start the colour head's kernel at zero: the untrained U-Net predicts grey, not noise "
           "(paper recipe: off; fast: on)")
    a("--init-generator", metavar="CHECKPOINT",
      help="a new run's generator starts as this run's or checkpoint's (same generator architecture): "
           "the GAN fine-tunes a trained U-Net. Its training seconds count in this run's clock")
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
    a("--mixed-precision", action="store_true",
      help="bfloat16 on CPUs, float16 with loss scaling on GPUs (last layers and losses stay float32)")
    a("--strategy", default="auto", choices=list(STRATEGIES),
      help="one: one device; mirrored: all local GPUs; multiworker: several machines (TF_CONFIG); "
           "auto: mirrored with more than one GPU, else one")
    a("--worker-timeout", type=float, default=300.0,
      help="multiworker: give up when the other workers do not answer for this many seconds (they did "
           "not start, or died); 0: wait forever. Ctrl-C / SIGTERM stop a waiting worker within 10 s")
    a("--sync-bn", action=argparse.BooleanOptionalAction,
      help="BatchNorm statistics over all replicas (on when there is more than one)")
    a("--xla", action="store_true", help="compile the training step with XLA (helps on GPUs only)")
    a("--no-progress", dest="progress", action="store_false", help="no progress bar (log files only)")
    return p


def parse_train_options(argv=None):
    """Parses and resolves the options; errors exit with one line (argparse's usage + message)."""
    parser = build_parser()
    opt = parser.parse_args(argv)
    for key, value in {**DATASET_PRESETS[opt.dataset], **RECIPES[opt.recipe]}.items():
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
                 "keep_checkpoints", "lr_decay_steps", "lr"):
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
