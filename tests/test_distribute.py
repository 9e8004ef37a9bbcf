"""tf.distribute on CPU: mirrored over two logical devices, two worker processes on 127.0.0.1,
checkpoints that move between strategies, and the errors of bad distribution options.

Logical devices must be configured before TensorFlow starts, so every distributed run happens in
a fresh subprocess (COLORGAN_LOGICAL_CPUS=2 splits its CPU in two).
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import colorize
import train as train_script
from models import checkpoint as ckpt
from tests.conftest import ROOT
from tests.helpers import TINY_OPTIONS, free_ports, image_folder

TINY = TINY_OPTIONS + ["--model", "unet", "--sample-interval", "100", "--save-interval", "100"]
TIMEOUT = 300  # seconds: a distributed run that hangs fails the test instead of the whole suite


def environment(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLORGAN_LOGICAL_CPUS": "2", **extra}


def python(code, **env):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=environment(**env),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def train(images, run_dir, *extra, **env):
    command = [sys.executable, "train.py", *TINY, "--dataset-path", str(images),
               "--checkpoints-path", str(run_dir), *extra]
    return subprocess.run(command, cwd=ROOT, env=environment(**env), capture_output=True, text=True,
                          timeout=TIMEOUT)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return image_folder(tmp_path_factory.mktemp("images"), train=20, test=4)


@pytest.mark.slow
def test_a_mirrored_step_on_two_devices_updates_the_weights_like_one_device():
    # The same GAN, the same global batch of 8 from the project's own pipelines: once on one
    # device, once as 2 x 4 images under MirroredStrategy with synchronised BatchNorm.  (No
    # dropout: each replica would draw its own mask.)
    result = python("""
        import json, re
        import keras, numpy as np
        from training import distribute
        from data.pipeline import array_source, distributed_train_batches, train_batches
        from options import TrainingConfig
        from models.architecture import Architecture
        from models.colorization import ColorizationModel
        from tests.helpers import TINY_ENCODER, colouring_task

        mirrored = distribute.make_strategy("mirrored")
        config = Architecture("gan", TINY_ENCODER, 0, 16)
        source = array_source(colouring_task(8))

        def one_step(strategy, batches):
            keras.utils.set_random_seed(0)
            model = ColorizationModel(config, TrainingConfig(batch_size=8, sync_bn=True), strategy)
            before = [v.numpy() for v in model.generator.trainable_variables]
            for _, L, ab in batches:
                losses = model.train_step(L, ab)
            moved = max(float(np.abs(v.numpy() - b).max()) for v, b in zip(model.generator.trainable_variables, before))
            return model, {k: float(v) for k, v in losses.items()}, moved

        single, single_losses, moved = one_step(None, train_batches(source, 8, 0, 0))
        twin, twin_losses, _ = one_step(mirrored, distributed_train_batches(mirrored, source, 8, 0, 0))
        # A bias right before a BatchNorm has a true gradient of exactly zero; Adam (beta1 = 0)
        # turns its rounding noise into +-lr steps, so those carry no information.
        before_bn = re.compile(r"(enc\\d+_conv|dec\\d+_deconv|conv[123])/bias")
        diffs = {v.path: np.abs(v.numpy() - w.numpy()).ravel().tolist()
                 for net in ("generator", "discriminator")
                 for v, w in zip(getattr(single, net).variables, getattr(twin, net).variables)
                 if not before_bn.search(v.path)}
        print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "single": single_losses,
                          "twin": twin_losses, "diffs": diffs, "steps": int(twin.step.numpy()),
                          "moved": moved}))
    """)
    assert result["replicas"] == 2 and result["steps"] == 1
    assert result["moved"] > 1e-4  # the step did change the weights
    for name, value in result["single"].items():
        assert result["twin"][name] == pytest.approx(value, rel=1e-5), name
    assert len(result["diffs"]) > 40  # every weight, BatchNorm moving statistics included
    diffs = np.concatenate([np.array(d) for d in result["diffs"].values()])
    # Float tolerance, with Adam's caveat: its first step is about lr * sign(gradient), so a weight
    # whose gradient is near zero, where the order of a sum decides the sign, can move by up to
    # 2 lr (6e-4) either way.  Unsynchronised BatchNorm (or a wrong split or average) moves most
    # weights by more than 1e-5.
    assert np.mean(diffs > 1e-5) < 1e-3, np.mean(diffs > 1e-5)
    assert diffs.max() < 1e-3
    for name, d in result["diffs"].items():
        if "moving" in name:
            assert max(d) < 1e-5, name  # BatchNorm statistics over the global batch


@pytest.mark.slow
def test_a_checkpoint_moves_between_mirrored_and_one_device_and_mixed_precision_works(images, tmp_path):
    # mirrored -> one -> mirrored in one process (logical devices are set once per process).
    run_dir = tmp_path / "run"
    outputs = python(f"""
        import contextlib, io, json
        import train
        outputs = []
        for strategy, steps in (("mirrored", 2), ("one", 4), ("mirrored", 6)):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = train.main({TINY!r} + ["--dataset-path", {str(images)!r}, "--checkpoints-path",
                                  {str(run_dir)!r}, "--strategy", strategy, "--max-steps", str(steps),
                                  "--mixed-precision"])
            outputs.append([code, out.getvalue()])
        print(json.dumps(outputs))
    """)
    assert [code for code, _ in outputs] == [0, 0, 0]
    assert "2 replicas, 2 images per replica" in outputs[0][1]
    assert "Resuming" in outputs[1][1] and "at step 2" in outputs[1][1]
    assert "Resuming" in outputs[2][1] and "at step 4" in outputs[2][1]
    config, options, state = ckpt.read_metadata(ckpt.latest_checkpoint(run_dir))
    assert state["step"] == 6 and config.mixed_precision and options["strategy"] == "mirrored"
    assert logged_steps(run_dir) == list(range(1, 7))
    coloured = tmp_path / "coloured"  # the mirrored, mixed-precision checkpoint in inference
    assert colorize.main([str(images / "test"), "--checkpoint", str(run_dir), "--output", str(coloured),
                          "--no-progress"]) == 0
    assert len(list(coloured.rglob("*.png"))) == 4


def start_two_workers(images, folders, *extra):
    """train.py as worker 0 and worker 1 of a MultiWorkerMirroredStrategy on 127.0.0.1."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index, folder in enumerate(folders):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        command = [sys.executable, "train.py", *TINY, "--dataset-path", str(images), "--checkpoints-path",
                   str(folder), "--strategy", "multiworker", *extra]
        env = environment(TF_CONFIG=tf_config, COLORGAN_LOGICAL_CPUS="")  # one CPU device per worker
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    return processes


def finish(processes, timeout=TIMEOUT):
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=timeout))
    finally:
        for process in processes:
            process.kill()  # a worker whose partner died would wait for it for ever
    return [(process.returncode, out, err) for process, (out, err) in zip(processes, outputs)]


def logged_steps(run_dir):
    path = run_dir / "log.csv"
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()[1:]] if path.exists() else []


@pytest.mark.slow
def test_two_worker_processes_train_stop_and_resume_together_and_only_the_chief_writes(images, tmp_path):
    # Each worker its own run folder, as on two machines without a shared disk: the chief's
    # folder gets the whole run, the other worker's nothing.
    chief, other = tmp_path / "chief_run", tmp_path / "worker1_run"
    results = finish(start_two_workers(images, [chief, other], "--max-steps", "2"))
    assert [code for code, _, _ in results] == [0, 0], results[0][2][-3000:] + results[1][2][-3000:]
    assert "2 replicas on 2 workers, 2 images per replica" in results[0][1]
    assert [p.name for p in ckpt.list_checkpoints(chief)] == ["step_00000002.h5"]
    # Resuming: only the chief has the checkpoint, and worker 1 takes its weights and position
    # from it (had it started afresh at step 0, the two would disagree on the steps and hang).
    # SIGTERM to worker 1 alone then stops both after the same step, and the chief saves it.
    processes = start_two_workers(images, [chief, other], "--epochs", "1000")
    deadline = time.time() + TIMEOUT
    while max(logged_steps(chief), default=0) < 4 and time.time() < deadline and processes[0].poll() is None:
        time.sleep(0.1)
    processes[1].send_signal(signal.SIGTERM)
    results = finish(processes, timeout=120)
    assert [code for code, _, _ in results] == [128 + signal.SIGTERM] * 2, results[0][2][-3000:]
    assert "Resuming" in results[0][1] and "at step 2" in results[0][1]
    step = ckpt.read_metadata(ckpt.latest_checkpoint(chief))[2]["step"]
    assert step >= 4 and logged_steps(chief) == list(range(1, step + 1))
    assert not other.exists() or not any(other.iterdir())
    coloured = tmp_path / "coloured"  # the chief's checkpoint in inference
    assert colorize.main([str(images / "test"), "--checkpoint", str(chief), "--output", str(coloured),
                          "--no-progress"]) == 0
    assert len(list(coloured.rglob("*.png"))) == 4


def test_a_batch_that_does_not_split_over_the_replicas_is_one_line_and_exit_2(images, tmp_path):
    result = train(images, tmp_path / "run", "--strategy", "mirrored", "--batch-size", "5")
    assert result.returncode == 2
    # One line of ours, the last (TensorFlow's own start-up log lines may come before it).
    last = result.stderr.strip().splitlines()[-1]
    assert last == "error: --batch-size 5 does not split evenly over 2 replicas: use a multiple of 2"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra, tf_config, message", [
    (["--strategy", "multiworker"], "", "--strategy multiworker needs the TF_CONFIG environment variable"),
    (["--strategy", "multiworker"], "{cluster", "TF_CONFIG is not valid JSON"),
    (["--strategy", "multiworker"], '{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG needs {"cluster"'),
    (["--strategy", "multiworker"], '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
     "task worker 1 is not in its cluster"),
    (["--strategy", "gpus"], "", "invalid choice: 'gpus'"),
])
def test_bad_distribution_options_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, extra, tf_config,
                                                          message):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(SystemExit) as e:
        train_script.main(["--dataset", "folder", "--dataset-path", str(tmp_path), *extra])
    assert e.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def start_lonely_worker(images, run_dir, *extra):
    """Worker 0 of a two-worker cluster whose worker 1 never starts."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}})
    command = [sys.executable, "train.py", *TINY, "--dataset-path", str(images), "--checkpoints-path",
               str(run_dir), "--strategy", "multiworker", *extra]
    return subprocess.Popen(command, cwd=ROOT, env=environment(TF_CONFIG=tf_config, COLORGAN_LOGICAL_CPUS="",
                                                               PYTHONFAULTHANDLER="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_watchdog(process, timeout=120):
    """Until the worker has started its watchdog (util/watcher.py), which train.py does after its
    imports, right before it waits for the other workers: a fixed sleep would signal a worker still
    importing TensorFlow when the machine is loaded."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()[1][-2000:]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                if parent == process.pid and "watcher.py" in (stat.parent / "cmdline").read_text():
                    return
            except (OSError, IndexError, ValueError):
                continue  # a process that ended meanwhile
        time.sleep(0.2)
    raise AssertionError(f"the worker started no watchdog within {timeout} s")


@pytest.mark.slow
def test_a_worker_whose_peers_never_arrive_gives_up_after_the_timeout(images, tmp_path):
    code, _, err = finish([start_lonely_worker(images, tmp_path / "run", "--worker-timeout", "4")], timeout=60)[0]
    # killed by its watchdog process (137 in a shell): it was blocked inside TensorFlow
    assert code == -signal.SIGKILL and "no answer from the other workers for 4 s" in err, err[-2000:]
    assert not list((tmp_path / "run").glob("step_*.h5"))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_waiting_for_its_peers_stops_on_sigterm_or_ctrl_c_within_seconds(images, tmp_path, signum):
    process = start_lonely_worker(images, tmp_path / "run")  # default timeout: 300 s
    wait_for_watchdog(process)  # TensorFlow imported; the worker starts waiting for worker 1
    time.sleep(2)
    assert process.poll() is None
    process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=15)  # "within seconds": the watchdog's 10 s, and start-up
    except subprocess.TimeoutExpired:  # hung: its Python stacks (PYTHONFAULTHANDLER) for the report
        process.send_signal(signal.SIGABRT)
        out, err = process.communicate(timeout=30)
        raise AssertionError(f"the worker did not stop within 15 s of signal {signum}:\n{err[-6000:]}") from None
    assert process.returncode != 0, err[-2000:]
