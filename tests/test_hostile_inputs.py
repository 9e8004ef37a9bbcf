"""Hostile inputs as someone trying to break the scripts would make them: files that are no regular
files, links out of a dataset, names that are not UTF-8, images of extreme shapes, damaged stored
metadata, the user's own Keras settings. Each is one line and a non-zero exit (or a named skip),
nothing hangs (every script runs with a timeout) and nothing grows without bound."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.helpers import TINY_OPTIONS, write_images

TIMEOUT = 180  # seconds: a script that hangs fails its test instead of blocking the suite
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def script(name, *args, env=None, timeout=TIMEOUT, limit_gb=None):
    """A script run as a user runs it: (exit status, stdout, stderr), with no traceback allowed.
    limit_gb caps its address space, so that a regression fails here instead of eating the machine."""
    def cap():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit_gb << 30, limit_gb << 30))

    done = subprocess.run([sys.executable, name, *map(os.fsdecode, args)], cwd=ROOT, env=env or ENV,
                          capture_output=True, timeout=timeout, preexec_fn=cap if limit_gb else None)
    out, err = (os.fsdecode(s) for s in (done.stdout, done.stderr))
    assert "Traceback" not in err, err[-3000:]
    return done.returncode, out, err


def warnings_naming(err, path):
    return [line for line in err.splitlines() if str(path) in line]


# ---------------------------------------------------------------- only regular files, under the dataset
@pytest.fixture
def hostile_dataset(tmp_path):
    """A dataset of 8 + 2 photos beside other folders of photos, holding a named pipe in each
    split, a link to its parent folder and a run folder of sample grids."""
    parent = tmp_path / "photos"
    write_images(parent / "other" / "a", 12)
    write_images(parent / "other" / "b", 12)
    root = parent / "mine"
    write_images(root / "train", 8)
    write_images(root / "test", 2, seed=1)
    os.mkfifo(root / "train" / "x.jpg")
    os.mkfifo(root / "test" / "y.png")
    (root / "train" / "up").symlink_to(parent)
    return root


def test_a_pipe_a_link_out_and_a_run_folder_are_skipped_each_named(hostile_dataset):
    from data.folder import list_folder
    from util.runlock import RunLock
    root = hostile_dataset
    with RunLock(root / "train" / "run"):
        write_images(root / "train" / "run" / "samples", 3)
    train = list_folder(root, "train")
    assert [os.path.basename(p) for p in train] == [f"img_{i:03d}.png" for i in range(8)]
    assert len(list_folder(root, "test")) == 2


@pytest.mark.slow
def test_train_and_test_py_skip_a_pipe_and_train_on_the_dataset_alone(hostile_dataset, tmp_path):
    root = hostile_dataset
    run = root / "train" / "run"  # a run folder inside its own dataset
    args = [*TINY_OPTIONS, "--model", "unet", "--dataset-path", root, "--checkpoints-path", run]
    status, out, err = script("train.py", *args, "--max-steps", "1")
    assert status == 0, err[-2000:]
    assert "(8 training, 2 test images)" in out
    assert len(warnings_naming(err, root / "train" / "x.jpg")) == 1
    assert "not a regular file" in err and "outside the dataset folder" in err
    status, out, err = script("train.py", *args, "--max-steps", "2")  # its samples/ exist now
    assert status == 0 and "run folder" in err, err[-2000:]
    status, out, err = script("test.py", "--checkpoint", run, "--output", tmp_path / "out", "--no-progress")
    assert status == 0, err[-2000:]
    assert len(warnings_naming(err, root / "test" / "y.png")) == 1


# ---------------------------------------------------------------- any file name
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.helpers import tiny_checkpoint
    return tiny_checkpoint(tmp_path_factory.mktemp("run") / "step_00000002.h5", "unet", 2)


def odd_name(folder, raw):
    """folder / a name given as bytes (not necessarily UTF-8), as Python holds it."""
    return folder / os.fsdecode(raw)


def test_colorize_py_does_any_file_name_and_an_output_in_its_input_folder_gains_nothing(checkpoint, tmp_path):
    folder = write_images(tmp_path / "photos", 2, ext="jpg")
    for raw in (b"caf\xe9.jpg", b"new\nline.jpg"):  # Latin-1, and a line break
        os.rename(folder / "img_000.jpg" if raw[0] == ord("c") else folder / "img_001.jpg", odd_name(folder, raw))
    output = odd_name(tmp_path, b"out\xff")
    env = {**ENV, "PYTHONIOENCODING": "utf-8"}  # a strict stdout, as under a UTF-8 locale
    status, out, err = script("colorize.py", folder, "--checkpoint", checkpoint, "--output", output, "--no-progress",
                              env=env)
    assert status == 0 and "2 colorized, 0 skipped, 0 failed" in out, err[-2000:]
    assert sorted(os.listdir(os.fsencode(output)))[1:] == [b"caf\xe9.png", b"new\nline.png"]  # after .colorized
    args = [folder, "--checkpoint", checkpoint, "--output", folder, "--side-by-side", "--no-progress"]
    assert script("colorize.py", *args, env=env)[0] == 0
    after_first = sorted(os.listdir(folder))
    assert len(after_first) == 1 + 2 * 3  # .colorized, the inputs, their outputs
    for _ in range(2):
        status, out, _ = script("colorize.py", *args, env=env)
        assert status == 0 and "0 colorized, 2 skipped" in out
        assert sorted(os.listdir(folder)) == after_first


@pytest.mark.slow
def test_train_py_trains_on_a_file_whose_name_is_not_utf8(tmp_path):
    root = tmp_path / "data"
    write_images(root / "train", 8)
    write_images(root / "test", 2, seed=1)
    os.rename(root / "train" / "img_000.png", odd_name(root / "train", b"caf\xe9.png"))
    os.rename(root / "test" / "img_000.png", odd_name(root / "test", b"na\xefve.png"))
    status, out, err = script("train.py", *TINY_OPTIONS, "--model", "unet", "--dataset-path", root, "--max-steps", "2",
                              "--checkpoints-path", tmp_path / "run", env={**ENV, "PYTHONIOENCODING": "utf-8"})
    assert status == 0 and "(8 training, 2 test images)" in out, err[-2000:]
    assert "skipping" not in err
