"""The training configuration and every script's command line, in one place.

The configuration: `TrainingConfig`, one dataclass whose defaults are the paper's recipe
(docs/recipe.md). train.py's command line is generated from its fields, one option per field, the
model takes it whole (models/colorization.py), every checkpoint stores it, and test.py names what a
run changed from it. A new training option is one field here and the code that uses it. A field
whose default is None takes its dataset's preset (DATASET_PRESETS: the reference README's runs) or
its recipe's (RECIPES); `resolved()` fills them in. Each field has a kind:
- "architecture": fixes the variables (`architecture()`, models/architecture.py); a run resumes
  only under the same value;
- "recipe": how the networks learn; may change on resume (announced) and names a test.py row;
- "run": where, how long, how often, on what devices.

The command lines: the flags test.py, colorize.py, serve.py and export.py share are defined once
(checkpoint, precision, progress), with one meaning. The resolved configuration is stored in every
checkpoint, so test.py and colorize.py need nothing but it.

No TensorFlow is imported here, so that `--help` and a bad option answer at once: the scripts
parse their command line before they import anything heavy.
"""
import argparse
import dataclasses
import math
import os
from pathlib import Path

from data import limits
from data.datasets import DATASETS
from inference.photo_io import FORMATS
from models.architecture import Architecture
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
MIXED_PRECISION_HELP = ("bfloat16 on CPUs (fast with AVX-512 BF16 or AMX), float16 with loss scaling on GPUs; "
                        "the last layers and the losses stay float32")


def _recipe_flags(name):
    return "; ".join(flag(k, v) for k, v in RECIPES[name].items())


def flag(name, value):
    """The command-line words that set a field to a value: --zero-head, --no-augment, --lr 0.001."""
    option = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return option if value else "--no-" + option[2:]
    return f"{option} {value:g}" if isinstance(value, float) else f"{option} {value}"


def option(default, help, kind="run", gan_only=False, **argparse):
    """A field of the configuration: its default, its --help text, its kind (module docstring),
    whether only the GAN uses it, and any further argparse keywords (choices, metavar)."""
    return dataclasses.field(default=default, metadata={"help": help, "kind": kind, "gan_only": gan_only,
                                                        "argparse": argparse})


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Frozen: a script changes it with dataclasses.replace, never in place."""
    # ------------------------------------------------------------------------------ data and run
    dataset: str = option("cifar10", "data source", choices=sorted(DATASETS))
    dataset_path: str = option(None, "dataset folder (default: datasets/<dataset>); --dataset folder: several "
                                         "folders joined by ':' (';' on Windows) train as one set, each scored apart by test.py")
    checkpoints_path: str = option(None, "run folder (default: checkpoints/<dataset>_<model>)")
    model: str = option("gan", "gan: the paper's cGAN; unet: the CNN baseline", "architecture", choices=MODELS)
    image_size: int = option(None, "square training size (cifar10 32, places365 256, folder 256)", "architecture")
    batch_size: int = option(None, "global batch size (cifar10 128, places365 16, folder 16)", "recipe")
    epochs: int = option(None, "epochs to train (cifar10 200, places365 10, folder 100)")
    max_steps: int = option(None, "stop after this many steps in total (smoke runs, benchmarks)")
    max_hours: float = option(None, "stop after this many hours of training (evaluations not counted): "
                                    "equal-time comparisons")
    # ------------------------------------------------------------------------ losses and schedule
    lr: float = option(3e-4, "generator learning rate; D's is --d-lr-factor times it", "recipe")
    d_lr_factor: float = option(0.1, "the discriminator's learning rate as a multiple of the generator's "
                                     "(the reference: 0.1)", "recipe", gan_only=True)
    shared_forward: bool = option(False, "GAN: the discriminator's step takes its fake colours from the first "
                                         "generator step's forward pass instead of a forward pass of its own (one "
                                         "generator forward pass less per batch; the same dropout mask for both, and "
                                         "one BatchNorm statistics update less)", "recipe", gan_only=True)
    g_steps: int = option(2, "GAN: generator steps on each batch after the discriminator's one (the reference: 2)",
                          "recipe", gan_only=True)
    lr_decay_rate: float = option(0.1, "factor per --lr-decay-steps (continuous)", "recipe")
    lr_decay_steps: float = option(None, "steps per decay factor (cifar10 1e4, places365 5e5)", "recipe")
    beta1: float = option(0.0, "Adam beta1 (the reference uses 0)", "recipe")
    l1_weight: float = option(100.0, "lambda, the weight of the L1 term", "recipe")
    label_smoothing: bool = option(None, "one-sided label smoothing: real target 0.9 (places365: on)", "recipe",
                                   gan_only=True)
    augment: bool = option(None, "random horizontal flips (cifar10: on)", "recipe")
    # ---------------------------------------------------------------------------------- networks
    init: str = option("reference", "kernel initializer: the reference code's VarianceScaling(1, fan_in, "
                                    "truncated normal), or Keras' default Glorot uniform", "recipe",
                       choices=["reference", "glorot"])
    generator: str = option(None, "generator network (models/registry.py; default: unet, the paper's; "
                                  "--recipe photo: unet-narrow)", "architecture", choices=list(GENERATORS))
    discriminator: str = option("patchgan", "discriminator network (models/registry.py)", "architecture",
                                gan_only=True, choices=list(DISCRIMINATORS))
    implementation: str = option(DEFAULT_IMPLEMENTATION, "lowmem: the memory-saving layers; plain: Keras' own "
                                 "layers. Same variables and maths: a checkpoint resumes and loads in either",
                                 choices=IMPLEMENTATIONS)
    recipe: str = option("paper", "paper: the paper's training recipe; fast: the changes that made learning "
                                  "faster in docs/time_to_quality.md (" + _recipe_flags("fast") + "); photo: for "
                                  "photographs, docs/photos.md (" + _recipe_flags("photo") + "); options given "
                                  "explicitly win", "recipe", choices=list(RECIPES))
    zero_head: bool = option(None, "start the colour head's kernel at zero: the untrained U-Net predicts grey, "
                                   "not noise (paper recipe: off; fast: on)", "recipe")
    init_generator: str = option(None, "a new run's generator starts as this run's or checkpoint's (same "
                                       "generator architecture): the GAN fine-tunes a trained U-Net. Its "
                                       "training seconds count in this run's clock", metavar="CHECKPOINT")
    g_ema: float = option(None, "also keep an exponential moving average of the generator's weights, decay "
                                "DECAY per step (e.g. 0.999; warmed up as min(DECAY, (1+n)/(10+n))), saved in "
                                "each checkpoint; test.py, colorize.py, serve.py and export.py use it (0: off; "
                                "paper recipe: 0)", "recipe", metavar="DECAY")
    dropout: float = option(0.5, "rate of the decoder's dropout layers (reference: 0.5, though its dropout "
                                 "never ran)", "recipe")
    seed: int = option(0, "seed of weights, data order and flips")
    # ------------------------------------------------------------------ checkpoints, logs, samples
    save_interval: int = option(1000, "steps between checkpoints (also each epoch)")
    keep_checkpoints: int = option(3, "how many recent checkpoints to keep")
    sample_interval: int = option(None, "steps between sample grids")
    sample_size: int = option(8, "test images in each sample grid")
    log_interval: int = option(10, "steps between CSV / TensorBoard log rows")
    eval_images: int = option(1000, "test images for the accuracy / MAE at each evaluation (0: none, -1: all)")
    eval_interval: int = option(None, "steps between evaluations (default: at each epoch's end only; always at "
                                      "the end of the run)")
    test_fraction: float = option(0.1, "folder: held-out share when no test/ subfolder")
    max_megapixels: float = option(limits.DEFAULT_MEGAPIXELS, limits.HELP)
    # ------------------------------------------------------------------------------------ devices
    mixed_precision: bool = option(False, MIXED_PRECISION_HELP + " (default: float32)", "architecture")
    strategy: str = option("auto", "one: one device; mirrored: all local GPUs; multiworker: several machines "
                                   "(TF_CONFIG); auto: mirrored with more than one GPU, else one",
                           choices=STRATEGY_NAMES)
    worker_timeout: float = option(300.0, "multiworker: give up when the other workers do not answer for this "
                                          "many seconds (they did not start, or died); 0: wait forever. Ctrl-C / "
                                          "SIGTERM stop a waiting worker within 10 s")
    sync_bn: bool = option(None, "BatchNorm statistics over all replicas (on when there is more than one)")
    xla: bool = option(False, "compile the training step with XLA (helps on GPUs only)")
    progress: bool = option(True, "a progress bar with the losses and speed")

    # --------------------------------------------------------------------------------------------
    def resolved(self):
        """A copy with every None default filled from the dataset's preset and the recipe's, the
        paths absolute (as stored in the checkpoints: test.py finds the data from anywhere)."""
        if self.recipe == "photo" and self.dataset not in PHOTO_DATASETS:
            raise ValueError(f"--recipe photo is for photographs: --dataset {' or '.join(PHOTO_DATASETS)}")
        defaults = {"generator": "unet", **DATASET_PRESETS[self.dataset], **RECIPES[self.recipe]}
        config = dataclasses.replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})
        path = config.dataset_path or str(Path("datasets") / config.dataset)
        # --dataset folder takes several folders joined by os.pathsep (data/folder.py).
        paths = os.pathsep.join(os.path.abspath(os.path.expanduser(p)) for p in path.split(os.pathsep) if p) or path
        return dataclasses.replace(
            config, dataset_path=paths,
            init_generator=os.path.abspath(config.init_generator) if config.init_generator else None,
            checkpoints_path=config.checkpoints_path or str(Path("checkpoints") / f"{config.dataset}_{config.model}"))

    def check(self):
        """Raises ValueError naming the first option that is out of its range."""
        for name in ("batch_size", "epochs", "save_interval", "sample_interval", "sample_size", "log_interval",
                     "keep_checkpoints", "lr_decay_steps", "lr", "d_lr_factor", "g_steps"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):  # refuses nan and inf
                raise ValueError(f"--{name.replace('_', '-')} must be positive and finite")
        if not 0 < self.lr_decay_rate <= 1:
            raise ValueError("--lr-decay-rate must be in (0, 1] (1: no decay)")
        if not 0 <= self.beta1 < 1:
            raise ValueError("--beta1 must be in [0, 1)")
        if not (self.l1_weight >= 0 and math.isfinite(self.l1_weight)):
            raise ValueError("--l1-weight must be finite and not negative")
        for name in ("max_steps", "max_hours", "eval_interval", "max_megapixels"):
            value = getattr(self, name)
            if value is not None and not value > 0:  # also refuses nan
                raise ValueError(f"--{name.replace('_', '-')} must be positive and finite")
        if self.strategy == "multiworker":
            check_tf_config()
        if not (self.worker_timeout >= 0 and math.isfinite(self.worker_timeout)):
            raise ValueError("--worker-timeout must be finite and not negative (0: wait forever)")
        if not 0 <= self.g_ema < 1:
            raise ValueError("--g-ema must be in [0, 1) (0: no weight average; typical: 0.999)")
        if not 0 <= self.dropout < 1:
            raise ValueError("--dropout must be in [0, 1)")
        if not 0 < self.test_fraction < 1:
            raise ValueError("--test-fraction must be between 0 and 1")
        if self.dataset == "cifar10" and self.image_size != 32:
            raise ValueError("CIFAR-10 images are 32x32: --image-size must be 32 (or left unset)")
        factor = downsampling_factor(self.generator_preset()["encoder"])
        if self.image_size % factor or self.image_size < factor:
            near = " or ".join(str(s) for s in valid_sizes_near(self.image_size, factor))
            raise ValueError(f"the U-Net cannot take --image-size {self.image_size}: it needs a "
                             f"multiple of {factor}; the nearest sizes are {near}")
        return self

    def generator_preset(self):
        """The U-Net's encoder and dropout layers for this dataset and image size (models/presets.py)."""
        return generator_preset(self.dataset, self.image_size)

    def architecture(self):
        """What fixes the variables (models/architecture.py): the network, its preset, its size."""
        preset = self.generator_preset()
        return Architecture(self.model, preset["encoder"], preset["dropout_layers"], self.image_size,
                            self.mixed_precision, self.generator, self.discriminator)

    def stored(self):
        """As a checkpoint stores it (JSON-ready)."""
        return dataclasses.asdict(self)


def generator_preset(dataset, image_size):
    return folder_preset(image_size) if dataset == "folder" else PRESETS[dataset]


def fields_of_kind(kind):
    return [f.name for f in dataclasses.fields(TrainingConfig) if f.metadata["kind"] == kind]


ARCHITECTURE_OPTIONS = tuple(fields_of_kind("architecture"))
RECIPE_OPTIONS = tuple(fields_of_kind("recipe"))


def defaults_for(stored):
    """The resolved defaults a stored run was compared against: its dataset's and recipe's."""
    dataset = stored.get("dataset") if stored.get("dataset") in DATASET_PRESETS else "cifar10"
    recipe = stored.get("recipe") if stored.get("recipe") in RECIPES else "paper"
    if recipe == "photo" and dataset not in PHOTO_DATASETS:
        recipe = "paper"
    return TrainingConfig(dataset=dataset, recipe=recipe).resolved()


def stored_options(stored):
    """A stored run's options with every field (the one place for checkpoints older than a field):
    a field that the checkpoint predates took its default, its dataset's and recipe's."""
    return {**defaults_for(stored).stored(), **stored}


def changes(stored, kinds=("recipe",)):
    """{field: value} of a stored run's options that differ from its dataset's and recipe's
    defaults, for the fields of these kinds that its model uses (checkpoints of any age: a field
    that a checkpoint predates is taken as its default)."""
    default = defaults_for(stored)
    gan = stored.get("model", "gan") == "gan"
    return {f.name: stored[f.name] for f in dataclasses.fields(TrainingConfig)
            if f.metadata["kind"] in kinds and (gan or not f.metadata["gan_only"])
            and stored.get(f.name) is not None and stored[f.name] != getattr(default, f.name)}


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
    """train.py's options: one per field of options.TrainingConfig, with its default and help."""
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
