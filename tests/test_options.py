"""options.py: one training configuration, command lines generated from it, and what
a user sees of them (a one-line usage on a bad option, no TensorFlow start-up noise)."""
import dataclasses
import os
import subprocess
import sys

import pytest

import options
from options import TrainingConfig
from options import build_parser, parse_train_options
from tests.conftest import ROOT


def test_every_field_of_the_configuration_is_a_train_option_with_its_default_and_help():
    parser = build_parser()
    actions = {a.dest: a for a in parser._actions}
    for field in dataclasses.fields(TrainingConfig):
        assert field.name in actions, field.name
        assert actions[field.name].default == field.default and actions[field.name].help == field.metadata["help"]
    assert set(actions) - {f.name for f in dataclasses.fields(TrainingConfig)} == {"help"}


def test_a_resolved_configuration_is_stored_and_read_back_whole():
    photo = parse_train_options(["--dataset", "folder", "--recipe", "photo", "--lr", "1e-3"])
    assert (photo.generator, photo.image_size, photo.lr_decay_steps, photo.batch_size) == ("unet-narrow", 128, 3e4, 16)
    assert TrainingConfig(**photo.stored()) == photo
    assert photo.stored() == dataclasses.asdict(photo) and os.path.isabs(photo.dataset_path)


def test_changes_names_what_a_run_changed_from_its_dataset_and_recipe():
    assert options.changes(parse_train_options(["--dataset", "folder", "--recipe", "photo"]).stored()) == {}
    stored = parse_train_options(["--dataset", "cifar10", "--model", "unet", "--lr", "1e-3", "--no-augment",
                                  "--g-steps", "1"]).stored()
    assert options.changes(stored) == {"lr": 1e-3, "augment": False}  # --g-steps: the GAN's only
    assert options.changes({"dataset": "cifar10", "model": "gan"}) == {}  # a checkpoint older than the fields
    assert options.flag("augment", False) == "--no-augment" and options.flag("lr", 1e-3) == "--lr 0.001"


@pytest.mark.parametrize("script, args, message", [
    ("train.py", ["--lr", "nan"], "--lr must be positive and finite"),
    ("train.py", ["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ("test.py", ["--checkpoint", "c", "--max-megapixels", "0"], "--max-megapixels must be positive"),
    ("colorize.py", ["a.jpg", "--size", "0"], "--size must be between 1 and 8192 pixels"),
    ("serve.py", ["--port", "0"], "--port must be between 1 and 65535"),
])
def test_a_bad_option_is_a_one_line_usage_and_the_error(script, args, message):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it
    done = subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"usage: {script} [options] (see {script} --help)",
                                        f"{script}: error: {message}"]


def test_tensorflow_starts_quietly_unless_the_user_sets_its_log_level(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "export.py", "--checkpoint", str(tmp_path / "none.h5"), "--output", str(tmp_path)]
    quiet = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 1 and quiet.stderr == f"error: checkpoint not found: {tmp_path / 'none.h5'}\n"
    loud = subprocess.run(command, cwd=ROOT, env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"}, capture_output=True,
                          text=True, timeout=120)
    assert loud.returncode == 1 and len(loud.stderr.splitlines()) > 1  # the user's choice is kept


def test_the_fast_recipe_sets_its_defaults_and_explicit_options_win():
    from options import RECIPES
    from options import parse_train_options
    import test as test_script
    paper = parse_train_options(["--dataset", "cifar10"])
    fast = parse_train_options(["--dataset", "cifar10", "--recipe", "fast"])
    assert paper.recipe == "paper" and not paper.zero_head
    assert all(getattr(fast, k) == v for k, v in RECIPES["fast"].items()) and fast.zero_head
    assert not parse_train_options(["--dataset", "cifar10", "--recipe", "fast", "--no-zero-head"]).zero_head
    scores = dict.fromkeys(["mae", "accuracy", "psnr", "ssim", "auc", "colourfulness", "colourfulness_true", "palette"], 1.0)
    state = {"epoch": 1, "position": 0, "seconds": 60}
    assert test_script.row({**vars(fast), "model": "unet"}, None, scores, state)["Network"] == "U-Net (CNN), fast recipe"
    assert test_script.row({**vars(paper), "model": "unet"}, None, scores, state)["Network"] == "U-Net (CNN)"
    decay = parse_train_options(["--dataset", "cifar10", "--recipe", "fast", "--lr-decay-steps", "2000"])
    assert (test_script.row({**vars(decay), "model": "unet"}, None, scores, state)["Network"]
            == "U-Net (CNN), fast recipe, rate x0.1 per 2,000 steps")  # a schedule other than the paper's is named
    assert test_script.row(vars(paper), "no colour (a* = b* = 0)", scores)["Network"] == "no colour (a* = b* = 0)"
