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


LIMIT_GB = 6  # the address space of a script whose memory a test bounds: a regression fails, not the machine
# A script as __main__, then its peak resident memory on stderr (as bench.py measures it).
PROBE = ("import runpy, sys\nsys.argv = sys.argv[1:]\nsys.path.insert(0, '.')\n"
         "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
         "finally:\n    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
         "    print('PEAK', int(hwm.split()[1]) // 1024, file=sys.stderr)\n")


def limit_memory():
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_GB << 30, LIMIT_GB << 30))


def script(name, *args, env=None, timeout=TIMEOUT, bounded=False):
    """A script run as a user runs it: (exit status, stdout, stderr), with no traceback allowed.
    bounded: within LIMIT_GB of address space, its peak memory (MB) printed last on stderr."""
    command = [sys.executable, *(["-c", PROBE] if bounded else []), name, *map(os.fsdecode, args)]
    done = subprocess.run(command, cwd=ROOT, env=env or ENV, capture_output=True, timeout=timeout,
                          preexec_fn=limit_memory if bounded else None)
    out, err = (os.fsdecode(s) for s in (done.stdout, done.stderr))
    assert "Traceback" not in err and "MemoryError" not in err, err[-3000:]
    return done.returncode, out, err


def peak_mb(err):
    return int(err.strip().splitlines()[-1].split()[1])


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
CHECKPOINT_MODEL = "unet"  # conftest.py: a U-Net after 3 steps


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


# ---------------------------------------------------------------- memory bounded by what the network sees
def strips(folder):
    """Long thin images a few kB in size, {name: shape}: the shipped model (its size 128) would see
    the first three at 49, 49 and 5 megapixels; the last, 1.15, is just within its limit."""
    from PIL import Image
    shapes = {"strip_3000x1.png": (3000, 1), "strip_1x3000.png": (1, 3000), "strip_3000x10.png": (3000, 10),
              "wide_9000x128.png": (9000, 128)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, shape in shapes.items():
        Image.linear_gradient("L").resize(shape).save(folder / name)
    return shapes


@pytest.mark.slow
def test_colorize_py_refuses_what_the_network_cannot_hold_and_stays_within_its_memory(tmp_path):
    strips(tmp_path / "photos")
    status, out, err = script("colorize.py", tmp_path / "photos", "--output", tmp_path / "out", "--no-progress",
                              bounded=True)
    assert status == 1 and "1 colorized, 0 skipped, 3 failed" in out, err[-2000:]
    for name, seen in (("strip_3000x1.png", "384000x128"), ("strip_1x3000.png", "128x384000"),
                       ("strip_3000x10.png", "38400x128")):
        line, = warnings_naming(err, tmp_path / "photos" / name)
        assert f"the network would see it at {seen}" in line and "over its limit of 1.25" in line
    assert (tmp_path / "out" / "wide_9000x128.png").is_file()
    assert peak_mb(err) < 2500  # TensorFlow's 1.1 GB, and about 0.9 GB for the widest image taken


SERVE_ONE = """
import sys
sys.path.insert(0, ".")
from fastapi.testclient import TestClient
from web import app as web_app
from options import SHIPPED_MODEL
with TestClient(web_app.create_app(SHIPPED_MODEL)) as client:
    for path in sys.argv[1:]:
        reply = client.post("/api/colorize", files={"file": (path.rsplit("/", 1)[-1], open(path, "rb").read())})
        print(reply.status_code, reply.json()["detail"] if reply.status_code != 200 else "png")
    print(client.get("/").status_code)
"""


@pytest.mark.slow
def test_one_upload_of_a_strip_is_refused_and_the_page_keeps_answering(tmp_path):
    strips(tmp_path)
    (tmp_path / "serve_one.py").write_text(SERVE_ONE)
    status, out, err = script(tmp_path / "serve_one.py", tmp_path / "strip_3000x1.png", tmp_path / "strip_3000x10.png",
                              bounded=True)
    replies = out.strip().splitlines()
    assert status == 0 and len(replies) == 3, err[-2000:]
    assert replies[0].startswith("413 strip_3000x1.png is 3000x1: the network would see it at 384000x128")
    assert replies[1].startswith("413 strip_3000x10.png is 3000x10")
    assert replies[2] == "200"  # still serving
    assert peak_mb(err) < 2500


# ---------------------------------------------------------------- stored metadata checked, not trusted
def test_a_damaged_places365_file_list_is_rebuilt_not_trusted(tmp_path, caplog):
    from data.places365 import list_places365
    folder = write_images(tmp_path / "places" / "val_256", 4, ext="jpg")
    an_hour_ago = os.stat(folder).st_mtime - 3600
    os.utime(folder, (an_hour_ago, an_hour_ago))  # an old folder: the cache is trusted by its mtime
    first = list_places365(tmp_path / "places", "test")
    flist = tmp_path / "places" / "test.flist"
    flist.write_text("".join(f"val_256/gone_{i}.jpg\n" for i in range(4)))  # as many lines, other files
    with caplog.at_level("WARNING"):
        assert list_places365(tmp_path / "places", "test") == first == sorted(map(str, folder.iterdir()))
    assert "is not the list that was cached" in caplog.text
    assert list_places365(tmp_path / "places", "test") == first  # rebuilt and cached again


def one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    return err


def test_stored_options_without_a_dataset_path_or_naming_an_unknown_dataset_are_one_line(tmp_path, capsys):
    import test as test_script
    from tests.helpers import tiny_checkpoint
    data = write_images(tmp_path / "data" / "test", 4).parent
    lacking = tiny_checkpoint(tmp_path / "a" / "step_00000001.h5", "unet")  # no dataset_path stored
    unknown = tiny_checkpoint(tmp_path / "b" / "step_00000001.h5", "unet", options={"dataset": "imagenet",
                                                                                  "dataset_path": str(data)})
    capsys.readouterr()
    assert test_script.main(["--checkpoint", str(lacking), "--output", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "does not say where its dataset is: pass --dataset-path" in one_error_line(capsys)
    assert test_script.main(["--checkpoint", str(unknown), "--output", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "names the dataset 'imagenet', which this code does not read" in one_error_line(capsys)
    # Told where and what, both run.
    assert test_script.main(["--checkpoint", str(lacking), "--dataset-path", str(data.parent), "--output",
                             str(tmp_path / "o"), "--no-progress", "--max-images", "4"]) == 0


@pytest.mark.parametrize("record", ["[]", '{"options": []}', '{"formats": {"keras": "x"}}', '{"image_size": "big"}'])
def test_an_export_json_that_is_not_an_export_record_is_one_line(tmp_path, capsys, record):
    import shutil

    import colorize
    from options import SHIPPED_MODEL
    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(SHIPPED_MODEL, export / "generator.keras")
    (export / "export.json").write_text(record)
    photos = write_images(tmp_path / "photos", 1)
    capsys.readouterr()
    assert colorize.main([str(photos), "--checkpoint", str(export), "--output", str(tmp_path / "out"),
                          "--no-progress"]) == 1
    assert "export.json" in one_error_line(capsys)


def test_a_checkpoint_the_user_may_not_read_is_one_line_and_never_set_aside(tmp_path, capsys, monkeypatch):
    import colorize
    import train
    from models import checkpoint as ckpt
    from tests.helpers import image_folder, tiny_checkpoint
    run = tmp_path / "run"
    path = tiny_checkpoint(run / "step_00000001.h5", "unet")
    if os.geteuid() == 0:  # root reads any file: the operating system's answer to anyone else
        def refused(name, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(name))
        monkeypatch.setattr(ckpt, "open", refused, raising=False)
    else:
        path.chmod(0)
    photos = write_images(tmp_path / "photos", 1)
    capsys.readouterr()
    assert colorize.main([str(photos), "--checkpoint", str(run), "--output", str(tmp_path / "out"),
                          "--no-progress"]) == 1
    assert f"cannot read {path}: Permission denied" in one_error_line(capsys)
    images = image_folder(tmp_path / "images", train=8, test=2)
    assert train.main([*TINY_OPTIONS, "--model", "unet", "--dataset-path", str(images), "--checkpoints-path", str(run),
                       "--max-steps", "2"]) == 1
    assert f"cannot read {path}: Permission denied" in one_error_line(capsys)
    assert path.exists() and not list(run.glob("*.damaged"))


# ---------------------------------------------------------------- the Turing page without usable images
def test_the_turing_page_without_usable_images_is_a_clear_503_and_the_page_keeps_answering(tmp_path):
    from fastapi.testclient import TestClient

    from web import app as web_app
    from tests.helpers import tiny_checkpoint
    data = write_images(tmp_path / "data" / "train", 4).parent
    (data / "test").mkdir()
    for i in range(3):  # photos cut after their header: listed, then not decodable
        (data / "test" / f"cut_{i}.png").write_bytes((data / "train" / f"img_00{i}.png").read_bytes()[:60])
    cases = {"no usable images": {"dataset_path": str(data)},
             "an unknown dataset": {"dataset": "imagenet", "dataset_path": str(data)}}
    for case, options in cases.items():
        checkpoint = tiny_checkpoint(tmp_path / case / "step_00000001.h5", "unet", options=options)
        with TestClient(web_app.create_app(checkpoint, turing_images=4)) as client:
            for url in ("/api/turing/alice", "/api/turing/image/0"):
                reply = client.get(url)
                assert reply.status_code == 503, (case, reply.text)
                assert reply.json()["detail"].startswith("the Turing test needs the test images: ")
            assert client.post("/api/turing/alice", data={"index": "0", "answer": "real"}).status_code == 503
            assert client.get("/").status_code == 200


# ---------------------------------------------------------------- the user's Keras settings
def keras_settings(home, setting):
    """The environment of a user whose Keras default is `setting`: a KERAS_BACKEND value, or a
    ~/.keras/keras.json naming another backend, channels_first and float16."""
    import json
    if setting != "keras.json":
        return {**ENV, "KERAS_BACKEND": setting}
    (home / ".keras").mkdir(parents=True, exist_ok=True)
    (home / ".keras" / "keras.json").write_text(json.dumps({"backend": "jax", "floatx": "float16", "epsilon": 0.1,
                                                            "image_data_format": "channels_first"}))
    env = {**ENV, "HOME": str(home)}
    env.pop("KERAS_HOME", None)
    env.pop("KERAS_BACKEND", None)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["jax", "torch", "numpy", "bogus", "keras.json"])
def test_colorize_py_runs_on_tensorflow_whatever_the_users_keras_default(checkpoint, tmp_path, setting):
    photos = write_images(tmp_path / "photos", 2)
    status, out, err = script("colorize.py", photos, "--checkpoint", checkpoint, "--output", tmp_path / "out",
                              "--no-progress", env=keras_settings(tmp_path / "home", setting))
    assert status == 0 and "2 colorized" in out, err[-2000:]


@pytest.mark.slow
def test_train_test_and_export_py_run_on_tensorflow_whatever_the_users_keras_default(tmp_path):
    from tests.helpers import image_folder
    env = {**keras_settings(tmp_path / "home", "keras.json"), "KERAS_BACKEND": "jax"}
    images = image_folder(tmp_path / "images", train=8, test=2)
    status, out, err = script("train.py", *TINY_OPTIONS, "--model", "unet", "--dataset-path", images,
                              "--checkpoints-path", tmp_path / "run", "--max-steps", "1", env=env)
    assert status == 0 and "Finished at step 1" in out, err[-2000:]
    status, out, err = script("test.py", "--checkpoint", tmp_path / "run", "--output", tmp_path / "test",
                              "--no-progress", env=env)
    assert status == 0 and (tmp_path / "test" / "results.json").is_file(), err[-2000:]
    status, out, err = script("export.py", "--checkpoint", tmp_path / "run", "--output", tmp_path / "export",
                              "--format", "keras", env=env)
    assert status == 0 and (tmp_path / "export" / "generator.keras").is_file(), err[-2000:]


# ---------------------------------------------------------------- a full disk loses nothing
def disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_turing_answer_refused_by_a_full_disk_leaves_no_half_row(tmp_path, monkeypatch):
    import csv

    from web import app as web_app
    test = web_app.TuringTest(None, {}, tmp_path, 4, 0)
    test.items = [("fake" if i % 2 else "real", None) for i in range(4)]
    test.answer("alice", 0, "real", 1.0)

    real_writer = csv.DictWriter

    def half_written(f, fields):  # a writer on a disk that fills in the middle of the row
        writer = real_writer(f, fields)

        def writerow(row):
            f.write(",".join(map(str, row.values()))[:10])
            raise OSError(28, "No space left on device")

        writer.writerow = writerow
        return writer

    with monkeypatch.context() as m:
        m.setattr(web_app.csv, "DictWriter", half_written)
        with pytest.raises(web_app.BadUpload) as e:
            test.answer("alice", 1, "fake", 1.0)
    assert e.value.status == 507 and "not counted" in str(e.value)
    test.answer("bob", 1, "real", 2.0)  # the disk has room again
    with open(tmp_path / "turing.csv", "a") as f:
        f.write("alice,2,fa")  # a server killed in the middle of a row
    test.answer("alice", 3, "real", 1.0)
    assert [a["index"] for a in test.answers("alice")] == ["0", "3"]
    assert [a["index"] for a in test.answers("bob")] == ["1"]
    assert test.state("alice")["answered"] == 2 and test.state("bob")["answered"] == 1


def test_test_py_on_a_full_disk_is_one_line_and_leaves_no_half_file(tmp_path, capsys, monkeypatch):
    import test as test_script
    from tests.helpers import image_folder, tiny_checkpoint
    from util import atomic
    images = image_folder(tmp_path / "images", train=4, test=4)
    checkpoint = tiny_checkpoint(tmp_path / "run" / "step_00000001.h5", "unet", options={"dataset_path": str(images)})
    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    capsys.readouterr()
    assert test_script.main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "out"), "--no-progress"]) == 1
    assert "cannot write the results (No space left on device)" in one_error_line(capsys)
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_export_py_on_a_full_disk_is_one_line_and_keeps_the_working_export(tmp_path, capsys, monkeypatch):
    import export
    from inference.loading import load_exported
    from tests.helpers import tiny_checkpoint
    from util import atomic
    checkpoint = tiny_checkpoint(tmp_path / "run" / "step_00000001.h5", "unet")
    args = ["--checkpoint", str(checkpoint), "--output", str(tmp_path / "export"), "--format", "keras"]
    assert export.main(args) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "export").iterdir()}
    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    capsys.readouterr()
    assert export.main(args) == 1
    assert "cannot write the export (No space left on device)" in one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in (tmp_path / "export").iterdir()} == before
    load_exported(tmp_path / "export" / "generator.keras")  # still the working export


def test_colorize_py_whose_manifest_cannot_be_written_names_each_photo_and_does_the_rest(
        checkpoint, tmp_path, capsys, monkeypatch):
    import colorize
    photos = write_images(tmp_path / "photos", 3)
    monkeypatch.setattr(colorize, "open", disk_full, raising=False)  # the manifest's append
    capsys.readouterr()
    assert colorize.main([str(photos), "--checkpoint", str(checkpoint), "--output", str(tmp_path / "out"),
                          "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert "0 colorized, 0 skipped, 3 failed" in out
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all("written, but not recorded in" in line for line in lines)


# ---------------------------------------------------------------- an interrupted write leaves the last good state
def test_the_temporary_of_a_colorize_py_killed_mid_save_is_removed_by_the_next_run(checkpoint, tmp_path):
    import colorize
    from util import atomic
    photos = write_images(tmp_path / "photos", 2)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid no process has now
    orphan = out / f".img_000.{dead.pid}.tmp.png"  # as a kill -9 during the save leaves it
    orphan.write_bytes(b"half a PNG")
    alive = atomic.temporary_name(out / "other.png")  # of a writer still running (this process)
    alive.write_bytes(b"being written")
    assert colorize.main([str(photos), "--checkpoint", str(checkpoint), "--output", str(out), "--no-progress"]) == 0
    assert not orphan.exists() and alive.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["img_000.png", "img_001.png"]


class Killed(BaseException):
    """A kill -9 at this point of a write (nothing after it runs)."""


def kill_at(monkeypatch, module, name, call=1):
    """Makes the `call`-th call of module.name the moment the process is killed."""
    real, calls = getattr(module, name), []

    def killed(*args, **kwargs):
        calls.append(args)
        if len(calls) == call:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, killed)


@pytest.mark.parametrize("moment", ["before the file is replaced", "before the final record"])
def test_export_py_killed_during_a_re_export_leaves_an_export_that_loads(tmp_path, monkeypatch, moment):
    import hashlib

    import export
    from inference.loading import load_exported
    from tests.helpers import tiny_checkpoint
    out = tmp_path / "export"
    first = tiny_checkpoint(tmp_path / "a" / "step_00000001.h5", "unet", steps=1)
    second = tiny_checkpoint(tmp_path / "b" / "step_00000002.h5", "unet", steps=2)
    assert export.main(["--checkpoint", str(first), "--output", str(out), "--format", "keras"]) == 0
    old = hashlib.sha256((out / "generator.keras").read_bytes()).hexdigest()
    with monkeypatch.context() as m:
        if moment == "before the file is replaced":
            kill_at(m, export.os, "replace")
        else:  # the pending record is the first export.json written, the final one the second
            kill_at(m, export.atomic, "write_text", call=2)
        with pytest.raises(Killed):
            export.main(["--checkpoint", str(second), "--output", str(out), "--format", "keras"])
    model, options, state = load_exported(out / "generator.keras")  # not refused as damaged
    now = hashlib.sha256((out / "generator.keras").read_bytes()).hexdigest()
    assert (now == old) == (moment == "before the file is replaced")
    assert state["step"] == (1 if now == old else 2)  # the record that goes with the file on disk


def test_export_py_killed_during_a_saved_model_re_export_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    import export
    import numpy as np
    import tensorflow as tf
    from tests.helpers import tiny_checkpoint
    out = tmp_path / "export"
    first = tiny_checkpoint(tmp_path / "a" / "step_00000001.h5", "unet", steps=1)
    second = tiny_checkpoint(tmp_path / "b" / "step_00000002.h5", "unet", steps=2)
    assert export.main(["--checkpoint", str(first), "--output", str(out), "--format", "saved_model"]) == 0
    grey = tf.zeros([1, 16, 16, 1], tf.uint8) + 100

    def served():
        return tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"](grey=grey)["ab"].numpy()
    before = served()
    with monkeypatch.context() as m:
        kill_at(m, export.atomic, "replace_folder")  # the new SavedModel written and checked, not yet in place
        with pytest.raises(Killed):
            export.main(["--checkpoint", str(second), "--output", str(out), "--format", "saved_model"])
    assert np.array_equal(served(), before)  # the previous export, whole
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # its staging folder removed
    assert export.main(["--checkpoint", str(second), "--output", str(out), "--format", "saved_model"]) == 0
    assert not np.array_equal(served(), before)  # replaced by the next export that finishes


def test_the_exported_keras_file_loads_under_jax(tmp_path):
    import importlib.util
    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed (pip install jax): the .keras file's other backend is not checked")
    import export
    from tests.helpers import tiny_checkpoint
    checkpoint = tiny_checkpoint(tmp_path / "run" / "step_00000001.h5", "unet", steps=1)
    assert export.main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "out"), "--format", "keras"]) == 0
    code = ("import keras, numpy as np; m = keras.saving.load_model(%r); "
            "print(float(np.abs(np.asarray(m(np.zeros((1, 16, 16, 1), 'float32')))).max()))") % str(tmp_path / "out" / "generator.keras")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "jax"}, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 0 <= float(result.stdout.split()[-1]) <= 1  # the tanh head's a*b*


# ---------------------------------------------------------------- resume after the data changed
@pytest.mark.slow
def test_a_resume_after_photos_were_removed_starts_the_epoch_over_and_announces_data_changes(tmp_path, capsys):
    import shutil

    import train
    from tests.helpers import image_folder
    images = image_folder(tmp_path / "images", train=12, test=2)
    run = tmp_path / "run"

    def resume(path, *extra):
        return train.main([*TINY_OPTIONS, "--model", "unet", "--dataset-path", str(path), "--checkpoints-path",
                           str(run), "--save-interval", "1", *extra])

    assert resume(images, "--max-steps", "2") == 0  # 8 of the epoch's 12 images seen
    for photo in sorted((images / "train").iterdir())[4:]:
        photo.unlink()
    capsys.readouterr()
    assert resume(images, "--max-steps", "3") == 0
    out, err = capsys.readouterr()
    assert "the training set has 4 images, 12 when step_00000002.h5 was saved: epoch 1 starts over" in err
    assert "Finished at step 3" in out
    moved = shutil.copytree(images, tmp_path / "moved")
    assert resume(moved, "--max-steps", "4", "--seed", "1") == 0
    err = capsys.readouterr().err
    assert f"--dataset-path was {images} in step_00000003.h5, {moved} from now on" in err
    assert "--seed was 0 in step_00000003.h5, 1 from now on" in err
