"""Measured speed on the machine it runs on: training step, whole loop, input pipelines, inference,
peak memory and retracing, as ratios from one run.

    python bench.py [--quick] [--json FILE]

Uses the real data of ../shared/datasets (or COLORGAN_SHARED_DATASETS) when present, generated
images otherwise.  A benchmark, not a test: run it alone, nothing else on the machine.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

import evaluation
from data.pipeline import array_source, eval_batches, file_source, train_batches
from models.colorization import ColorizationModel, architecture
from models.generator import PRESETS

ROOT = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("COLORGAN_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
PRESET_SHAPES = {"cifar10": (32, 128), "places365": (256, 16)}  # image size, batch (README runs)


def timed(fn, repeats):
    """Seconds per call after one warm-up call (which traces)."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bare_step(preset, kind, mixed, steps):
    size, batch = PRESET_SHAPES[preset]
    model = ColorizationModel(architecture(kind, PRESETS[preset]["encoder"], PRESETS[preset]["dropout_layers"],
                                          size, mixed), global_batch_size=batch)
    rng = np.random.default_rng(0)
    L = tf.constant(rng.uniform(-1, 1, (batch, size, size, 1)), tf.float32)
    ab = tf.constant(rng.uniform(-0.3, 0.3, (batch, size, size, 2)), tf.float32)
    seconds = timed(lambda: float(model.train_step(L, ab)["g_l1"]), steps)
    return batch / seconds, model.traces


def pipeline_rate(dataset, batches):
    start, n = None, 0
    for i, (_, L, _) in enumerate(dataset.take(batches + 1)):
        if i == 0:
            start = time.perf_counter()  # the first batch pays for start-up
            continue
        n += int(L.shape[0])
    return n / (time.perf_counter() - start)


def jpeg_folder(tmp, count):
    """256x256 JPEG photographs: the Places365 sample repeated, or generated images without it."""
    from PIL import Image
    sources = sorted((SHARED / "places365-sample").rglob("*.jpg")) if SHARED.is_dir() else []
    rng = np.random.default_rng(0)
    for i in range(count):
        if sources:
            image = Image.open(sources[i % len(sources)]).convert("RGB").resize((256, 256))
        else:
            image = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
        image.save(tmp / f"{i:05d}.jpg", quality=90)
    return sorted(str(p) for p in tmp.iterdir())


def cifar_images():
    if (SHARED / "cifar10" / "make_cifar10.py").is_file():
        from data.cifar10 import load_cifar10
        tmp = Path(tempfile.mkdtemp())
        subprocess.run([sys.executable, str(SHARED / "cifar10" / "make_cifar10.py"), str(tmp)], check=True,
                       capture_output=True)
        return tmp, load_cifar10(tmp, "train")
    return None, np.random.default_rng(0).integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8)


def train_run(args, cwd):
    """Runs train.py in a child process; returns (its log rows, its peak resident memory in MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, str(ROOT / "train.py"), "--no-progress", *args], cwd=cwd, check=True,
                   capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    run_dir = Path(cwd) / args[args.index("--checkpoints-path") + 1]
    rows = (run_dir / "log.csv").read_text().splitlines()[1:]
    return [dict(zip(("step", "epoch", "seconds", "lr", "images_per_s"), r.split(","))) for r in rows], \
        max(peak, before) / 1024


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few steps of each, CIFAR-10 preset only")
    p.add_argument("--json", help="also write the results here")
    opt = p.parse_args(argv)
    steps = 2 if opt.quick else 6
    results = {"machine": {"cpus": os.cpu_count(), "tensorflow": tf.__version__}, "quick": opt.quick}
    rows = []

    # 1. The bare training step, on tensors already in memory.
    presets = ["cifar10"] if opt.quick else ["cifar10", "places365"]
    step_rates = {}
    for preset in presets:
        for kind in ("gan", "unet"):
            for mixed in (False, True):
                rate, traces = bare_step(preset, kind, mixed, steps if preset == "cifar10" else 2)
                step_rates[(preset, kind, mixed)] = rate
                name = f"step {preset} {kind} {'mixed' if mixed else 'float32'}"
                rows.append((name, f"{rate:.1f} img/s", f"traced {traces}x"))
                results[name] = {"images_per_s": rate, "traces": traces}
    for preset in presets:
        for kind in ("gan", "unet"):
            ratio = step_rates[(preset, kind, True)] / step_rates[(preset, kind, False)]
            rows.append((f"mixed / float32 step, {preset} {kind}", f"{ratio:.2f}x", ""))
            results[f"mixed speed-up {preset} {kind}"] = ratio

    # 3. Input pipelines alone, per core, as a multiple of the step that consumes them.
    cifar_dir, images = cifar_images()
    cifar = pipeline_rate(train_batches(array_source(images), 128, 0, 0), 20 if opt.quick else 100)
    tmp = Path(tempfile.mkdtemp())
    paths = jpeg_folder(tmp, 64 if opt.quick else 320)
    places = pipeline_rate(train_batches(file_source(paths, 256), 16, 0, 0), len(paths) // 16 - 1)
    cores = os.cpu_count()
    for name, rate, step in (("pipeline cifar10 pickles", cifar, step_rates[("cifar10", "gan", False)]),
                             ("pipeline 256x256 jpeg folder", places,
                              step_rates.get(("places365", "gan", False)))):
        ratio = f"{rate / step:.1f}x the gan step" if step else ""
        rows.append((name, f"{rate:.0f} img/s ({rate / cores:.0f} per core)", ratio))
        results[name] = {"images_per_s": rate, "per_core": rate / cores, "x_step": rate / step if step else None}

    # 4. Inference at 32x32, test.py's path.
    model = ColorizationModel(architecture("gan", PRESETS["cifar10"]["encoder"], 2, 32))
    n = 1000 if opt.quick else 5000
    start = time.perf_counter()
    evaluation.evaluate(model, array_source(images[:n], drop_grayscale=False), 250, names=("accuracy", "mae"))
    rate = n / (time.perf_counter() - start)
    rows.append(("evaluation cifar10 (test.py path)", f"{rate:.0f} img/s", f"10,000 images in {10000 / rate:.0f} s"))
    results["evaluation cifar10"] = {"images_per_s": rate}

    # 2 and 5. The whole loop as train.py runs it on CIFAR-10, and its peak memory.
    if cifar_dir is not None:
        max_steps = 4 if opt.quick else 30
        with tempfile.TemporaryDirectory() as cwd:
            log, peak = train_run(["--dataset", "cifar10", "--dataset-path", str(cifar_dir), "--checkpoints-path",
                                   "run", "--max-steps", str(max_steps), "--log-interval", "2"], cwd)
        loop = float(np.mean([float(r["images_per_s"]) for r in log[1:]]))
        ratio = loop / step_rates[("cifar10", "gan", False)]
        rows.append(("whole loop cifar10 gan (train.py)", f"{loop:.1f} img/s", f"{ratio:.0%} of the bare step"))
        rows.append(("peak memory cifar10 training", f"{peak:.0f} MB", ""))
        results["whole loop cifar10 gan"] = {"images_per_s": loop, "x_step": ratio, "peak_mb": peak}
        shutil.rmtree(cifar_dir, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)

    print("| measurement | value | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if opt.json:
        Path(opt.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
