"""Nothing lost, nothing hangs, every bad input one line: damaged checkpoints, a second run on the
same folder, interrupted saves, unusable data, paths, and a training killed at random moments."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import colorize
import options
import test as test_script
import train
from models import checkpoint as ckpt
from tests.conftest import ROOT
from tests.helpers import TINY_OPTIONS, image_folder, tiny_training, write_images
from util import atomic
from util.runlock import RunLock

TINY = TINY_OPTIONS + ["--model", "unet", "--sample-interval", "1000", "--save-interval", "1"]

run = tiny_training(TINY)


@pytest.fixture(scope="module")
def two_checkpoints(images, tmp_path_factory):
    """A run folder with intact checkpoints at steps 1 and 2."""
    run_dir = tmp_path_factory.mktemp("run")
    assert run(images, run_dir, "--max-steps", "2") == 0
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == ["step_00000001.h5", "step_00000002.h5"]
    return run_dir


def copy_run(source, dest):
    dest.mkdir()
    for p in ckpt.list_checkpoints(source):
        (dest / p.name).write_bytes(p.read_bytes())
    return dest


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def overwrite_middle(path):  # garbage over the middle of the generator's largest weight, on disk
    with h5py.File(path, "r") as f:
        largest = max(f["generator"].values(), key=lambda d: d.nbytes)
        offset, size = largest.id.get_offset(), largest.nbytes
    with open(path, "r+b") as f:
        f.seek(offset + size // 2)
        f.write(bytes(random.Random(0).getrandbits(8) for _ in range(min(256, size // 2))))


def change_a_weight(path):  # a valid HDF5 file whose values changed: only the checksum sees it
    with h5py.File(path, "r+") as f:
        data = f["generator"]["0000"]
        data[...] = data[()] + 1


def remove_a_variable(path):
    with h5py.File(path, "r+") as f:
        del f["generator"]["0003"]


def bad_json(path):
    with h5py.File(path, "r+") as f:
        f.attrs["state"] = "{not json"


def absurd_size(path):  # a crafted file asking for a terabyte-sized layer
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["config"])
        config["encoder"][1] = [10 ** 9, 2]
        f.attrs["config"] = json.dumps(config)


def not_ours(path):
    path.write_bytes(b"GIF89a" + bytes(100))


DAMAGES = {"truncated": (truncate, "damaged"), "overwritten": (overwrite_middle, "do not match their checksum"),
           "changed weights": (change_a_weight, "do not match their checksum"),
           "missing key": (remove_a_variable, "damaged"), "bad json": (bad_json, "unreadable metadata"),
           "absurd size": (absurd_size, "invalid architecture"), "not ours": (not_ours, "not an HDF5 file")}


@pytest.fixture(scope="module")
def resumer(two_checkpoints, images):
    """restore(run_dir): train.py's choice of the checkpoint to resume (train.restore_intact), on a
    model of the run's architecture built once, with the messages it prints."""
    opt = options.parse_train_options([*TINY, "--dataset-path", str(images), "--checkpoints-path",
                                       str(two_checkpoints)])
    model = train.build_model(opt)
    return lambda run_dir: train.restore_intact(model, ckpt.list_checkpoints(run_dir), opt)


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_checkpoint_is_one_line_and_set_aside_for_the_newest_intact_one(
        two_checkpoints, resumer, images, tmp_path, capsys, damage):
    harm, message = DAMAGES[damage]
    run_dir = copy_run(two_checkpoints, tmp_path / "run")
    harm(run_dir / "step_00000002.h5")
    capsys.readouterr()
    # test.py and colorize.py: one line, exit 1
    assert test_script.main(["--checkpoint", str(run_dir / "step_00000002.h5"), "--output", str(tmp_path / "t"),
                             "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert colorize.main([str(images / "test"), "--checkpoint", str(run_dir / "step_00000002.h5"),
                          "--output", str(tmp_path / "c"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    # train.py's resume: step 2 set aside (kept), step 1 restored
    state, restored = resumer(run_dir)
    err = capsys.readouterr().err
    assert message in err and "resuming from step_00000001.h5" in err
    assert restored.name == "step_00000001.h5" and state["step"] == 1
    assert (run_dir / "step_00000002.h5.damaged").exists()
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == ["step_00000001.h5"]


@pytest.mark.slow
def test_a_run_whose_newest_checkpoint_is_damaged_trains_on_from_the_one_before(two_checkpoints, images, tmp_path,
                                                                                capsys):
    run_dir = copy_run(two_checkpoints, tmp_path / "run")
    truncate(run_dir / "step_00000002.h5")
    assert run(images, run_dir, "--max-steps", "3") == 0
    out = capsys.readouterr()
    assert "damaged" in out.err and "resuming from step_00000001.h5" in out.err
    assert "at step 1 " in out.out
    assert (run_dir / "step_00000002.h5.damaged").exists()
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == ["step_00000001.h5", "step_00000002.h5",
                                                                 "step_00000003.h5"]


def test_a_checkpoint_written_by_a_newer_version_is_refused_not_set_aside(two_checkpoints, images, tmp_path, capsys):
    run_dir = copy_run(two_checkpoints, tmp_path / "run")
    with h5py.File(run_dir / "step_00000002.h5", "r+") as f:
        f.attrs["version"] = ckpt.VERSION + 1
    assert run(images, run_dir, "--max-steps", "3") == 1
    assert "newer version" in capsys.readouterr().err
    assert (run_dir / "step_00000002.h5").exists()


def test_a_second_training_on_a_run_folder_in_use_is_refused_with_the_owner(images, tmp_path, capsys):
    with RunLock(tmp_path / "run"):
        assert run(images, tmp_path / "run", "--max-steps", "1") == 1
    err = capsys.readouterr().err
    assert f"is in use by another training (pid {os.getpid()}" in err
    assert not ckpt.list_checkpoints(tmp_path / "run")
    assert run(images, tmp_path / "run", "--max-steps", "1") == 0  # released: the next run goes


def test_the_lock_of_a_killed_run_does_not_block_the_next(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
                               "from util.runlock import RunLock; lock = RunLock(sys.argv[2]).acquire(); "
                               "print('locked', flush=True); time.sleep(60)", str(ROOT), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(Exception, match=f"pid {holder.pid}"):
        RunLock(tmp_path).acquire()
    holder.kill()
    holder.wait()
    RunLock(tmp_path).acquire().release()


@pytest.mark.slow
def test_saves_honour_the_umask_and_leftover_temporaries_are_removed(images, tmp_path, capsys):
    run_dir = tmp_path / "run"
    old = os.umask(0o027)
    try:
        assert run(images, run_dir, "--max-steps", "1") == 0
    finally:
        os.umask(old)
    assert (run_dir / "step_00000001.h5").stat().st_mode & 0o777 == 0o640
    leftover = atomic.temporary_name(run_dir / "step_00000002.h5")  # as a kill -9 mid-save leaves it
    leftover.write_bytes(b"half a checkpoint")
    capsys.readouterr()
    assert run(images, run_dir, "--max-steps", "2") == 0
    assert "removed 1 temporary files" in capsys.readouterr().err and not leftover.exists()


def test_an_unwritable_run_folder_or_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(
        images, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    assert run(images, tmp_path / "file" / "run", "--max-steps", "1") == 1
    assert "run folder (--checkpoints-path)" in capsys.readouterr().err
    run_dir = tmp_path / "run"
    assert run(images, run_dir, "--max-steps", "1") == 0
    intact = (run_dir / "step_00000001.h5").read_bytes()

    real_file = h5py.File

    def full_disk(path, mode="r", *args, **kwargs):  # reading works, writing finds the disk full
        if mode == "w":
            raise OSError(28, "No space left on device")
        return real_file(path, mode, *args, **kwargs)

    monkeypatch.setattr(ckpt, "h5py", type("h5", (), {"File": staticmethod(full_disk)}))
    capsys.readouterr()
    assert run(images, run_dir, "--max-steps", "2") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "the last checkpoint is kept" in err[0]
    assert (run_dir / "step_00000001.h5").read_bytes() == intact
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_a_folder_of_unusable_images_is_one_line_and_saves_nothing(tmp_path, capsys):
    root = tmp_path / "grey"
    for split, count in (("train", 8), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((16, 16, 3), 30 * i, np.uint8)).save(root / split / f"g{i}.png")
    assert train.main(TINY + ["--dataset-path", str(root), "--checkpoints-path", str(tmp_path / "run"),
                              "--epochs", "100"]) == 1
    err = capsys.readouterr().err
    assert "no usable training images: every one of the 8 files was skipped" in err
    assert not ckpt.list_checkpoints(tmp_path / "run")


def test_a_test_split_of_truncated_files_is_one_line(images, two_checkpoints, tmp_path, capsys):
    root = tmp_path / "data"
    write_images(root / "train", 8)
    write_images(root / "test", 3, ext="jpg")
    for p in (root / "test").iterdir():
        p.write_bytes(p.read_bytes()[:40])  # a JPEG header and nothing else
    assert test_script.main(["--checkpoint", str(two_checkpoints), "--dataset-path", str(root),
                             "--output", str(tmp_path / "out"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no usable test images")


def test_test_py_finds_the_dataset_from_another_directory_and_checks_its_output_first(
        two_checkpoints, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    def not_before_the_output_check(*args, **kwargs):
        raise AssertionError("loaded a checkpoint before checking the output folder")

    with monkeypatch.context() as m:
        m.setattr(test_script, "evaluate_checkpoints", not_before_the_output_check)
        assert test_script.main(["--checkpoint", str(two_checkpoints), "--output", "file/out", "--no-progress"]) == 1
    assert "error: cannot write in output folder file/out" in capsys.readouterr().err
    assert test_script.main(["--checkpoint", str(two_checkpoints), "--output", "out", "--no-progress"]) == 0
    assert (tmp_path / "out" / "results.json").exists()
    assert not (tmp_path / "datasets").exists()  # nothing downloaded or created here


def test_a_dataset_path_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "cifar").write_text("x")
    assert train.main(["--dataset", "cifar10", "--dataset-path", str(tmp_path / "cifar"), "--checkpoints-path",
                       str(tmp_path / "run"), "--no-progress"]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_colorize_into_its_input_folder_gains_nothing_on_a_second_run(two_checkpoints, tmp_path):
    folder = write_images(tmp_path / "photos", 3, ext="jpg")
    args = [str(folder), "--checkpoint", str(two_checkpoints), "--output", str(folder), "--side-by-side",
            "--no-progress"]
    assert colorize.main(args) == 0
    after_first = sorted(p.name for p in folder.iterdir())
    assert len([n for n in after_first if not n.startswith(".")]) == 3 * 3
    for _ in range(2):
        assert colorize.main(args) == 0
        assert sorted(p.name for p in folder.iterdir()) == after_first


def test_a_skipped_file_is_named_once(tmp_path, capsys, caplog, two_checkpoints):
    folder = write_images(tmp_path / "photos", 2)
    (folder / "notes.png").write_text("not an image")
    assert colorize.main([str(folder), "--checkpoint", str(two_checkpoints), "--output", str(tmp_path / "out"),
                          "--no-progress"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len([line for line in lines if "notes.png" in line]) == 1


def tensorboard_steps(run_dir, tag="train/g_l1"):
    steps = []
    for path in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            steps += [event.step for v in event.summary.value if v.tag == tag]
    return sorted(steps)


def logged_steps(run_dir):
    lines = (run_dir / "log.csv").read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines]


@pytest.mark.slow
def test_a_training_killed_at_random_moments_resumes_to_the_end_with_every_step_logged_once(images, tmp_path):
    # SIGKILL during steps and during saves (a checkpoint every step), three times, then to the end.
    run_dir, total, rng = tmp_path / "run", 12, random.Random(1)
    command = [sys.executable, "train.py", *TINY, "--dataset-path", str(images), "--checkpoints-path",
               str(run_dir), "--max-steps", str(total)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    kills = 0
    for _ in range(3):
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = max(logged_steps(run_dir), default=0) if (run_dir / "log.csv").exists() else 0
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            if (run_dir / "log.csv").exists() and max(logged_steps(run_dir), default=0) >= start + 2:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))  # somewhere in a step or a save
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 2
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Finished at step {total}" in result.stdout
    assert logged_steps(run_dir) == list(range(1, total + 1))
    assert tensorboard_steps(run_dir) == list(range(1, total + 1))
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    latest = ckpt.latest_checkpoint(run_dir)
    assert ckpt.read_metadata(latest)[2]["step"] == total
    assert test_script.main(["--checkpoint", str(run_dir), "--output", str(tmp_path / "out"), "--no-progress"]) == 0


def test_symlink_loops_in_a_dataset_are_skipped_with_a_warning(tmp_path, caplog):
    from data.folder import list_folder
    root = image_folder(tmp_path / "data", train=4, test=2)
    (root / "train" / "self.jpg").symlink_to("self.jpg")  # a link to itself
    (root / "train" / "a").symlink_to("b")
    (root / "train" / "b").symlink_to("a")
    (root / "train" / "again").symlink_to(root / "train")  # the folder itself, linked inside it
    with caplog.at_level("WARNING"):
        assert len(list_folder(root, "train")) == 4
    assert "self.jpg: Too many levels of symbolic links" in caplog.text


def test_a_missing_dataset_creates_no_folder_and_no_run_folder(tmp_path, capsys, monkeypatch):
    import urllib.error
    from data import cifar10

    def offline(url, dest):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(cifar10, "_fetch", offline)
    assert train.main(["--dataset", "cifar10", "--dataset-path", str(tmp_path / "a" / "cifar"),
                       "--checkpoints-path", str(tmp_path / "run"), "--no-progress"]) == 1
    assert "CIFAR-10 not found" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_colorize_size_is_bounded_at_parse_time(capsys):
    with pytest.raises(SystemExit) as e:
        colorize.parse_options(["x.jpg", "--checkpoint", "c", "--output", "o", "--size", "100000"])
    assert e.value.code == 2 and "--size must be between 1 and 8192" in capsys.readouterr().err


def test_test_fraction_reaches_the_folder_reader(tmp_path):
    from data.datasets import load_source
    flat = write_images(tmp_path / "flat", 40)
    sizes = {f: (len(load_source("folder", flat, "train", 16, test_fraction=f)),
                 len(load_source("folder", flat, "test", 16, test_fraction=f))) for f in (0.1, 0.5)}
    assert all(train + test == 40 for train, test in sizes.values())
    assert sizes[0.5][1] > sizes[0.1][1] + 8  # about 20 held out against about 4


def test_a_checkpoint_naming_a_network_this_code_lacks_is_one_line(two_checkpoints, tmp_path, capsys):
    path = tmp_path / "step_00000002.h5"
    path.write_bytes((two_checkpoints / "step_00000002.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["config"])
        f.attrs["config"] = json.dumps({**config, "generator": "transformer"})
    assert test_script.main(["--checkpoint", str(path), "--output", str(tmp_path / "o"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "needs the generator 'transformer'" in err and len(err.splitlines()) == 1
