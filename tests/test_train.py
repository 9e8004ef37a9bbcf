"""train.py and test.py end to end on tiny image folders: resume, outputs, bad input."""
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

import test as test_script
import train
from models import checkpoint as ckpt
from tests.conftest import ROOT
from tests.helpers import TINY_OPTIONS, tiny_training

TINY = TINY_OPTIONS + ["--epochs", "3", "--sample-interval", "2", "--save-interval", "100"]

run = tiny_training(TINY)


def generator_weights(path):
    with h5py.File(path) as f:
        return [f["generator"][k][()] for k in sorted(f["generator"])]


def trainable(path, group="generator"):
    """The generator's kernels, biases and BatchNorm scales by path (not its running statistics)."""
    with h5py.File(path) as f:
        return {v.attrs["path"]: v[()] for v in f[group].values()
                if v.attrs["path"].rsplit("/", 1)[-1] in ("kernel", "bias", "gamma", "beta")}


@pytest.mark.slow
def test_a_stopped_and_resumed_run_ends_like_an_uninterrupted_one(images, tmp_path, capsys):
    assert run(images, tmp_path / "straight", "--max-steps", "7") == 0
    assert run(images, tmp_path / "resumed", "--max-steps", "3") == 0
    assert run(images, tmp_path / "resumed", "--max-steps", "7") == 0
    assert "Resuming" in capsys.readouterr().out
    a = ckpt.latest_checkpoint(tmp_path / "straight")
    b = ckpt.latest_checkpoint(tmp_path / "resumed")
    assert a.name == b.name == "step_00000007.h5"
    state_a, state_b = ckpt.read_metadata(a)[2], ckpt.read_metadata(b)[2]
    assert {k: state_a[k] for k in ("step", "epoch", "position")} == {"step": 7, "epoch": 1, "position": 8}
    assert {k: state_b[k] for k in ("step", "epoch", "position")} == {"step": 7, "epoch": 1, "position": 8}
    # Multithreaded CPU kernels are not bit-reproducible even between two uninterrupted runs, and
    # Adam with beta1 = 0 turns that noise into steps of up to the learning rate (3e-4): the
    # weights agree to a few such steps, where a wrong data order or a lost optimizer state
    # would differ by far more.
    diffs = np.concatenate([np.abs(x - y).ravel() for x, y in zip(generator_weights(a), generator_weights(b))])
    assert np.mean(diffs) < 1e-3
    # The log continues across the resume: one row per step, none lost, none truncated.
    steps = [int(line.split(",")[0]) for line in (tmp_path / "resumed" / "log.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 8))


@pytest.mark.slow
def test_a_run_writes_everything_and_test_py_reads_it(images, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(images, run_dir, "--epochs", "1") == 0
    for name in ("log.csv", "eval.csv", "loss.png", "samples/step_00000002.png", "samples/epoch_0001.png"):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tensorboard").iterdir())
    out = tmp_path / "results"
    assert test_script.main(["--checkpoint", str(run_dir), "--output", str(out), "--no-progress"]) == 0
    rows = json.loads((out / "results.json").read_text())
    assert [r["Network"] for r in rows] == ["no colour (a* = b* = 0)", "GAN, unet-narrow"]  # TINY_OPTIONS' network
    assert 0 <= rows[1]["Accuracy"] <= 100 and rows[1]["MAE"] > 0
    assert (out / "results.md").read_text().startswith("| Dataset | Network | BatchNorm | Batch size | Epochs | Hours | MAE")
    assert (out / "quality.png").is_file() and (out / "tradeoff.png").is_file()  # the run evaluated at its epoch's end
    assert (out / "samples.png").is_file() and (out / "loss.png").is_file()
    # 16-bit inference of the same float32 checkpoint: the same table to within bfloat16's rounding.
    args = ["--checkpoint", str(run_dir), "--output", str(tmp_path / "bf16"), "--no-progress", "--mixed-precision"]
    assert test_script.main(args) == 0
    rows16 = json.loads((tmp_path / "bf16" / "results.json").read_text())
    assert rows16[0] == rows[0]
    assert rows16[1]["MAE"] == pytest.approx(rows[1]["MAE"], abs=0.5)
    assert rows16[1]["Accuracy"] == pytest.approx(rows[1]["Accuracy"], abs=2)


def test_a_foreign_checkpoint_in_the_run_folder_is_set_aside_and_kept(images, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    foreign = run_dir / "step_00000005.h5"
    foreign.write_bytes(b"not a checkpoint")
    assert run(images, run_dir) == 1
    err = capsys.readouterr().err
    assert "not an HDF5 file" in err and "no intact checkpoint" in err
    # set aside, byte for byte, never deleted nor overwritten by the run's own step 5
    assert (run_dir / "step_00000005.h5.damaged").read_bytes() == b"not a checkpoint"


def test_resuming_with_another_architecture_is_refused(images, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(images, run_dir, "--model", "unet", "--max-steps", "1") == 0
    before = (run_dir / "step_00000001.h5").read_bytes()
    assert run(images, run_dir, "--model", "gan", "--max-steps", "2") == 1
    assert "model is unet in the checkpoint, gan here" in capsys.readouterr().err
    assert (run_dir / "step_00000001.h5").read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--dataset", "mnist"], "invalid choice: 'mnist'"),
    (["--model", "vae"], "invalid choice: 'vae'"),
    (["--dataset", "folder", "--image-size", "100"], "nearest sizes are 96 or 112"),
    (["--dataset", "places365", "--image-size", "200"], "nearest sizes are 128 or 256"),
    (["--batch-size", "0"], "--batch-size must be positive"),
    (["--lr", "nan"], "--lr must be positive and finite"),
    (["--lr=-1e-4"], "--lr must be positive and finite"),
    (["--lr-decay-rate", "0"], "--lr-decay-rate must be in (0, 1]"),
    (["--beta1", "1"], "--beta1 must be in [0, 1)"),
    (["--l1-weight", "inf"], "--l1-weight must be finite"),
    (["--d-lr-factor", "0"], "--d-lr-factor must be positive and finite"),
    (["--g-steps", "0"], "--g-steps must be positive"),
    (["--sample-size", "0"], "--sample-size must be positive"),
    (["--max-hours", "nan"], "--max-hours must be positive"),
    (["--dropout", "1"], "--dropout must be in [0, 1)"),
])
def test_bad_options_exit_with_one_clear_line(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(args)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_dataset_is_one_line_and_a_nonzero_exit(tmp_path):
    result = subprocess.run([sys.executable, "train.py", "--dataset", "places365", "--dataset-path",
                             str(tmp_path / "nowhere"), "--checkpoints-path", str(tmp_path / "run")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Places365 train images not found" in errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("stop, folder", [("SIGTERM", "run"), ("SIGINT", "multiworker_run")])
def test_a_stop_signal_saves_a_checkpoint_and_the_run_resumes(images, tmp_path, stop, folder):
    """Ctrl-C and SIGTERM stop a run whatever its paths are called (signals follow --strategy)."""
    import os
    import signal
    import time
    run_dir = tmp_path / folder
    command = [sys.executable, "train.py", *TINY, "--model", "unet", "--epochs", "50", "--dataset-path",
               str(images), "--checkpoints-path", str(run_dir)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    deadline = time.time() + 120
    while not (run_dir / "log.csv").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(getattr(signal, stop))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + getattr(signal, stop), err
    assert "run the same command to resume" in err
    saved = ckpt.latest_checkpoint(run_dir)
    step = ckpt.read_metadata(saved)[2]["step"]
    assert step >= 1
    assert run(images, run_dir, "--model", "unet", "--max-steps", str(step + 1)) == 0
    assert ckpt.read_metadata(ckpt.latest_checkpoint(run_dir))[2]["step"] == step + 1


@pytest.mark.slow
def test_a_diverging_run_stops_with_one_line_and_keeps_its_good_checkpoints(images, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(images, run_dir, "--model", "unet", "--max-steps", "2", "--save-interval", "1") == 0
    good = (run_dir / "step_00000002.h5").read_bytes()
    # A learning rate of 1e30 overflows the weights within a few steps.
    assert run(images, run_dir, "--model", "unet", "--max-steps", "40", "--save-interval", "1", "--lr", "1e30") == 1
    err = capsys.readouterr().err
    assert "note: --lr was 0.0003 in step_00000002.h5, 1e+30 from now on" in err  # announced, not silent
    assert err.count("error:") == 1 and "error: training diverged by step" in err
    assert (run_dir / "step_00000002.h5").read_bytes() == good
    for path in run_dir.glob("step_*.h5"):
        with h5py.File(path) as f:
            assert all(np.isfinite(f["generator"][k][()]).all() for k in f["generator"]), path.name


@pytest.mark.slow
def test_a_gan_warm_started_from_a_unet_begins_with_its_generator_and_counts_its_hours(images, tmp_path, capsys):
    unet, gan = tmp_path / "unet", tmp_path / "gan"
    assert run(images, unet, "--model", "unet", "--seed", "1", "--max-steps", "2", "--g-ema", "0.5") == 0
    unet_seconds = ckpt.read_metadata(unet / "step_00000002.h5")[2]["seconds"]
    # At a learning rate of 1e-7 one GAN step (two G updates) moves no weight by more than ~2e-7,
    # where a generator initialised afresh (seed 0, not 1) differs from the U-Net's by far more.
    assert run(images, gan, "--init-generator", str(unet), "--lr", "1e-7", "--max-steps", "1") == 0
    assert "its weight average" in capsys.readouterr().out
    # The U-Net's weight average (--g-ema), which differs from its trained weights by about a step.
    u_average, u_weights, g_weights = (trainable(run_dir / name, group) for run_dir, name, group in (
        (unet, "step_00000002.h5", "generator_ema"), (unet, "step_00000002.h5", "generator"),
        (gan, "step_00000001.h5", "generator")))
    assert u_average.keys() == g_weights.keys() and len(u_average) > 10
    assert max(np.max(np.abs(u_average[k] - g_weights[k])) for k in u_average) < 1e-5
    assert max(np.max(np.abs(u_weights[k] - g_weights[k])) for k in u_average) > 1e-5
    config, options, state = ckpt.read_metadata(gan / "step_00000001.h5")
    assert config.model == "gan" and state["step"] == 1
    assert state["init_seconds"] == unet_seconds and state["seconds"] > unet_seconds
    assert options["init_generator"] == str((unet / "step_00000002.h5").resolve())
    first_eval = (gan / "eval.csv").read_text().splitlines()[1].split(",")
    assert float(first_eval[2]) >= round(unet_seconds, 1)  # time to quality includes the U-Net's training
    # Resuming the warm-started run keeps its origin in every checkpoint.
    assert run(images, gan, "--init-generator", str(unet), "--lr", "1e-7", "--max-steps", "2") == 0
    assert ckpt.read_metadata(gan / "step_00000002.h5")[2]["init_seconds"] == unet_seconds
    # The row names the pretraining (its hours, however long the tiny run took on a loaded machine)
    # and a recipe changed from the paper's (this run's --lr 1e-7).
    hours = f"G from a {unet_seconds / 3600:.2f} h run"
    assert test_script.describe_network(options, state) == f"GAN, unet-narrow, --lr 1e-07, {hours}"
    assert test_script.describe_network({**options, "lr": 3e-4, "g_steps": 1, "dropout": 0.0}, state) == \
        f"GAN, unet-narrow, --g-steps 1, --dropout 0, {hours}"
    assert test_script.curve_labels([gan / "step_00000002.h5", tmp_path / "other" / "step_00000002.h5"],
                                    [(None, options, state)] * 2) == [f"GAN, unet-narrow, --lr 1e-07, {hours} (gan)",
                                                                      f"GAN, unet-narrow, --lr 1e-07, {hours} (other)"]


@pytest.mark.slow
def test_warm_starting_from_another_generator_is_one_line_and_leaves_no_run(images, tmp_path, capsys):
    assert run(images, tmp_path / "unet", "--model", "unet", "--max-steps", "1") == 0
    assert train.main([*TINY, "--image-size", "32", "--dataset-path", str(images), "--checkpoints-path",
                       str(tmp_path / "gan"), "--init-generator", str(tmp_path / "unet")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has another generator" in err[0] and "image_size is 16" in err[0], err
    assert not (tmp_path / "gan").exists()
    assert run(images, tmp_path / "gan", "--init-generator", str(tmp_path / "nothing")) == 1
    assert "nothing" in capsys.readouterr().err


@pytest.mark.parametrize("script, args", [("train.py", ["--help"]), ("test.py", ["--help"]),
                                          ("colorize.py", ["--help"]), ("train.py", ["--lr", "nan"]),
                                          ("colorize.py", ["a.jpg", "--checkpoint", "c", "--output", "o",
                                                           "--size", "0"])])
def test_help_and_bad_options_answer_without_starting_tensorflow(script, args):
    probe = ("import runpy, sys\n"
             f"sys.argv = [{script!r}, *{args!r}]\n"
             "try:\n"
             f"    runpy.run_path({script!r}, run_name='__main__')\n"
             "except SystemExit as e:\n"
             "    code = e.code\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
             "print('exit', code, 'heavy', heavy[:3])\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    code = 0 if args == ["--help"] else 2
    assert done.stdout.strip().splitlines()[-1] == f"exit {code} heavy []", (done.stdout, done.stderr)


def test_the_photo_recipe_builds_the_narrow_unet_trains_and_resumes(images, tmp_path):
    from options import RECIPES
    from options import parse_train_options
    photo = parse_train_options(["--dataset", "folder", "--recipe", "photo"])
    assert (photo.generator, photo.image_size, photo.zero_head, photo.g_ema) == ("unet-narrow", 128, True, 0.999)
    assert parse_train_options(["--dataset", "folder", "--recipe", "photo", "--image-size", "64"]).image_size == 64
    assert parse_train_options(["--dataset", "folder"]).generator == "unet"  # the paper's network by default
    # At 32 pixels, the folder preset's U-Net has fewer layers: the same code, traced faster.
    common = ["--dataset", "folder", "--recipe", "photo", "--model", "unet", "--batch-size", "2", "--eval-images", "2",
              "--image-size", "32", "--no-progress", "--dataset-path", str(images), "--checkpoints-path", str(tmp_path)]
    assert train.main(common + ["--max-steps", "1"]) == 0
    first = ckpt.latest_checkpoint(tmp_path)
    config, options, _ = ckpt.read_metadata(first)
    assert config.generator == "unet-narrow" and config.image_size == 32 and options["g_ema"] == 0.999
    assert train.main(common + ["--max-steps", "2"]) == 0  # resumes the run: one more step
    assert ckpt.read_metadata(ckpt.latest_checkpoint(tmp_path))[2]["step"] == 2
    assert RECIPES["photo"]["generator"] in test_script.describe_network(
        {"model": "unet", "recipe": "fast", "generator": "unet-narrow"}, {})  # named where its recipe is not photo


@pytest.mark.parametrize("argv, strategy", [
    (["--checkpoints-path", "multiworker"], None), (["--dataset-path", "/data/multiworker/x"], None),
    (["--strategy", "multiworker"], "multiworker"), (["--strategy=multiworker"], "multiworker"),
    (["--strat", "multiworker"], "multiworker"), (["--strategy", "one", "--checkpoints-path", "multiworker"], "one")])
def test_signal_handling_follows_the_parsed_strategy_not_the_words_of_a_path(argv, strategy):
    assert train.strategy_option(argv) == strategy


def test_the_photo_recipe_is_refused_for_cifar10(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--dataset", "cifar10", "--recipe", "photo"])
    assert e.value.code == 2 and "--recipe photo is for photographs" in capsys.readouterr().err


def test_several_folders_train_as_one_set_and_test_py_scores_each_apart(tmp_path, capsys):
    import os
    from tests.helpers import image_folder
    first, second = image_folder(tmp_path / "first", train=8, test=3), image_folder(tmp_path / "second", train=12, test=5)
    run_dir = tmp_path / "run"
    paths = f"{first}{os.pathsep}{second}"
    assert train.main(TINY + ["--dataset-path", paths, "--checkpoints-path", str(run_dir), "--epochs", "1",
                              "--model", "unet"]) == 0
    assert "(20 training, 8 test images)" in capsys.readouterr().out  # both folders, both splits
    options = ckpt.read_metadata(ckpt.resolve_checkpoint(str(run_dir)))[1]
    assert options["dataset_path"] == paths and options["train_images"] == 20
    out = tmp_path / "results"
    assert test_script.main(["--checkpoint", str(run_dir), "--output", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"3 test images of folder first ({first})" in printed and f"5 test images of folder second ({second})" in printed
    rows = json.loads((out / "results.json").read_text())
    assert [(r["Dataset"], r["Network"].split(",")[0]) for r in rows] == [
        ("folder first", "no colour (a* = b* = 0)"), ("folder first", "U-Net (CNN)"),
        ("folder second", "no colour (a* = b* = 0)"), ("folder second", "U-Net (CNN)")]
