"""Measured speed on the machine it runs on: training step, whole loop, input pipelines, inference,
peak memory and retracing, as ratios from one run.

    python bench.py [--quick] [--json FILE]

Uses the real data of ../shared/datasets (or COLORGAN_SHARED_DATASETS) when present, generated
images otherwise.  A benchmark, not a test: run it alone, nothing else on the machine.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from util.quiet import quiet_tensorflow

if __name__ == "__main__":
    quiet_tensorflow()  # before TensorFlow's first import

import numpy as np
import tensorflow as tf

import evaluation
from data.pipeline import array_source, file_source, train_batches
from config import TrainingConfig
from models.colorization import ColorizationModel, architecture
from models import discriminator
from models.presets import PRESETS

ROOT = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("COLORGAN_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
SECTIONS = ("steps", "profile", "pipelines", "inference", "loop", "memory", "photo")
PRESET_SHAPES = {"cifar10": (32, 128), "places365": (256, 16)}  # image size, batch (README runs)


def cpu_description():
    """The CPU's model name and whether it computes bfloat16 natively (what --mixed-precision needs)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    return {"model": model, "bfloat16": sorted(flags & {"avx512_bf16", "amx_bf16"})}


def timed(fn, repeats):
    """Seconds per call after one warm-up call (which traces)."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bare_step(preset, kind, mixed, steps, batch, xla=False, implementation="lowmem", g_ema=0.0, g_steps=2):
    """Images/s of the training step, and its trace count.

    implementation: "lowmem" (the memory-saving layers, the default) or "plain" (Keras' own layers,
    TensorFlow's own convolution kernels and gradients): what the memory-saving layers cost or buy.
    g_ema: train.py --g-ema, the generator's weight average updated after each step.
    g_steps: train.py --g-steps, the GAN's generator steps per batch (the reference's 2).
    """
    size = PRESET_SHAPES[preset][0]
    config = architecture(kind, PRESETS[preset]["encoder"], PRESETS[preset]["dropout_layers"], size, mixed)
    return config_step(config, steps, batch, xla=xla, implementation=implementation, g_ema=g_ema, g_steps=g_steps)


def config_step(config, steps, batch, **hparams):
    """Images/s of the training step of the model `config` describes, and its trace count;
    `hparams`: fields of config.TrainingConfig."""
    size = config["image_size"]
    model = ColorizationModel(config, TrainingConfig(batch_size=batch, **hparams))
    rng = np.random.default_rng(0)
    L = tf.constant(rng.uniform(-1, 1, (batch, size, size, 1)), tf.float32)
    ab = tf.constant(rng.uniform(-0.3, 0.3, (batch, size, size, 2)), tf.float32)
    seconds = timed(lambda: float(model.train_step(L, ab)["g_l1"]), steps)
    return batch / seconds, model.traces


# Op types of the profile, by what they do: the convolutions and matrix products are the FLOPs
# the peak measures; everything else is time the step spends outside them.
OP_GROUPS = {
    "convolution": ("Conv", "MatMul", "Einsum"),
    "batchnorm": ("BatchNorm",),
    "cast": ("Cast",),
    "layout (pad, slice, concat, transpose)": ("Pad", "Slice", "Concat", "Transpose", "Pack", "Reshape",
                                               "Reverse", "Tile", "Gather"),
    "reduction": ("Mean", "Sum", "Max", "Min", "Prod"),
    "variables": ("VariableOp", "Assign"),
}


def op_group(op_type):
    return next((group for group, words in OP_GROUPS.items() if any(w in op_type for w in words)),
                "element-wise and other")


def profile_step(kind, mixed, steps, batch, logdir):
    """Seconds per op type in `steps` CIFAR-10 training steps, from a tf.profiler trace (written to
    `logdir`, viewable in TensorBoard's profile tab): summed over TensorFlow's inter-op threads."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    size = PRESET_SHAPES["cifar10"][0]
    model = ColorizationModel(architecture(kind, PRESETS["cifar10"]["encoder"], PRESETS["cifar10"]["dropout_layers"],
                                           size, mixed), TrainingConfig(batch_size=batch))
    rng = np.random.default_rng(0)
    L = tf.constant(rng.uniform(-1, 1, (batch, size, size, 1)), tf.float32)
    ab = tf.constant(rng.uniform(-0.3, 0.3, (batch, size, size, 2)), tf.float32)
    float(model.train_step(L, ab)["g_l1"])  # traced outside the profile
    tf.profiler.experimental.start(str(logdir))
    begin = time.perf_counter()
    for _ in range(steps):
        float(model.train_step(L, ab)["g_l1"])
    wall = time.perf_counter() - begin
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    space.ParseFromString(sorted(Path(logdir).rglob("*.xplane.pb"))[-1].read_bytes())
    seconds = {}
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the inter-op threads run the graph's ops
                continue
            for event in line.events:
                meta = plane.event_metadata[event.metadata_id]
                if meta.name.count(":") == 1:  # "scope/op_name:OpType"; not "ExecutorState::Process",
                    # the span that encloses each op, nor the rest of the threadpool's bookkeeping
                    op_type = meta.display_name or meta.name.rsplit(":", 1)[1]
                    seconds[op_type] = seconds.get(op_type, 0.0) + event.duration_ps * 1e-12
    return seconds, wall


def matmul_rate(dtype=tf.float32, n=2048):
    """An n x n matrix product in `dtype`, in GFLOP/s."""
    a = tf.cast(tf.random.normal((n, n)), dtype)
    product = tf.function(lambda m: m @ m)
    seconds = timed(lambda: product(a).numpy(), 10)
    return 2 * n ** 3 / seconds / 1e9


def convolution_rate(dtype=tf.float32, batch=32, size=32, channels=256):
    """A 3x3 'same' convolution of `channels` to `channels` channels in `dtype`, in GFLOP/s."""
    x = tf.cast(tf.random.normal((batch, size, size, channels)), dtype)
    kernel = tf.cast(tf.random.normal((3, 3, channels, channels)), dtype)
    convolution = tf.function(lambda x: tf.nn.conv2d(x, kernel, 1, "SAME"))
    seconds = timed(lambda: convolution(x).numpy(), 10)
    return 2 * batch * size * size * 9 * channels * channels / seconds / 1e9


def machine_peak(dtype):
    """The machine's peak as TensorFlow reaches it: the faster of a large matrix product and a
    large convolution. A matrix product alone can read low: on 2 cores of an AMD EPYC with
    avx512_bf16 one run measured 200 float32 GFLOP/s for it while the U-Net's step reached 290, so
    the step read as 145 % of the peak (the convolution: 432; the product, an hour later, 392)."""
    matmul, convolution = matmul_rate(dtype), convolution_rate(dtype)
    return max(matmul, convolution), matmul, convolution


def conv_gflops(layers, size, channels):
    """Multiply-adds x 2 of 4x4 'same' convolutions [(filters, stride)] on a size x size image."""
    macs = 0
    for filters, stride in layers:
        size //= stride
        macs += size * size * 16 * channels * filters
        channels = filters
    return 2 * macs / 1e9


def step_gflops(preset, kind):
    """Model FLOPs of one training step per image, convolutions only, by the usual convention
    that a trained layer's backward pass costs twice its forward pass (input and weight gradients).

    U-Net: G forward and backward, 3 G.  GAN: the D step is G forward plus D forward and backward
    on the real and the fake batch (G + 6 D); each of the two G steps is G forward and backward
    plus D forward and its input gradient (3 G + 2 D): 7 G + 10 D in all.
    """
    size = PRESET_SHAPES[preset][0]
    g = generator_gflops(PRESETS[preset]["encoder"], size)
    if kind == "unet":
        return 3 * g
    d = conv_gflops([(f, s) for f, s, _ in discriminator.LAYERS], size, 3)
    return 7 * g + 10 * d


def generator_gflops(encoder, size):
    """Multiply-adds x 2 of one U-Net forward pass on a size x size image (convolutions only)."""
    macs, channels, skips = 0, 1, []
    for filters, stride in encoder:
        size //= stride
        macs += size * size * 16 * channels * filters
        channels = filters
        skips.append(filters)
    for filters, skip in zip([f for f, _ in encoder[:-1]][::-1], skips[-2::-1]):
        size *= 2
        macs += size * size * 4 * channels * filters  # each output pixel sees 2x2 of the 4x4 taps
        channels = filters + skip
    macs += size * size * channels * 2
    return 2 * macs / 1e9


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
    """Runs train.py in a child process; returns (its log rows, its peak resident memory in MB).

    The peak is measured by a fresh `python` that runs train.py and reports its own children's
    maximum, so earlier runs in this process do not hide a smaller one.
    """
    # VmHWM, not getrusage: Linux carries the parent's high-water mark across fork and exec.
    probe = ("import os, runpy, sys; sys.argv = sys.argv[1:]; sys.path.insert(0, os.path.dirname(sys.argv[0]))\n"
             "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
             "finally:\n    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
             "    print('PEAK', hwm.split()[1], file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe, str(ROOT / "train.py"), "--no-progress", *args], cwd=cwd,
                            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    peaks = [line.split()[1] for line in result.stderr.splitlines() if line.startswith("PEAK ")]
    if result.returncode != 0 or not peaks:
        raise RuntimeError(f"train.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    run_dir = Path(cwd) / args[args.index("--checkpoints-path") + 1]
    with open(run_dir / "log.csv", newline="") as f:
        return list(csv.DictReader(f)), int(peaks[-1]) / 1024


def colorize_times(tmp, sizes):
    """Seconds to colorize one JPEG of each size with colorize.py's code path (read, predict, save).

    The Places365 generator, untrained (the weights do not change the time); the first photo also
    traces and compiles, so it is timed separately from a second one of the same size.
    """
    from PIL import Image

    import photo_io
    import photos
    model = ColorizationModel(architecture("gan", PRESETS["places365"]["encoder"], 3, 256))
    sources = sorted((SHARED / "places365-sample").rglob("*.jpg")) if SHARED.is_dir() else []
    times = {}
    for width, height in sizes:
        if sources:
            image = Image.open(sources[0]).convert("RGB").resize((width, height), Image.BICUBIC)
        else:
            image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))
        path = tmp / f"photo_{width}x{height}.jpg"
        image.save(path, quality=90)
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            colorized = photos.colorize_image(model, photos.read_image(path), 256)
            photo_io.save(colorized, tmp / "out.png", "PNG")
            seconds.append(time.perf_counter() - start)
        times[f"{width}x{height}"] = seconds
    return times


def photo_section(opt, peaks, record):
    """The photo recipe's training step (train.py --recipe photo: the half-width U-Net at 128x128,
    batch 16, weight average on) against the machine's peak, and the shipped photo model on a
    12-megapixel photo through colorize.py's path."""
    from PIL import Image

    import photo_io
    import photos
    from models.colorization import load_for_inference
    from models.presets import folder_preset, narrow
    from options import SHIPPED_MODEL
    preset = folder_preset(128)
    encoder = narrow(preset["encoder"])
    flops = 3 * generator_gflops(encoder, 128)  # a U-Net step: forward and backward
    batch = 4 if opt.quick else 16
    for mixed in (False, True):
        config = architecture("unet", encoder, preset["dropout_layers"], 128, mixed, generator="unet-narrow")
        rate, traces = config_step(config, 1 if opt.quick else 3, batch, zero_head=True, g_ema=0.999)
        share = rate * flops / peaks[mixed]
        record(f"step photo recipe (unet-narrow 128) {'mixed' if mixed else 'float32'}", f"{rate:.1f} img/s",
               f"batch {batch}, traced {traces}x; {rate * flops:.0f} GFLOP/s, {share:.0%} of the "
               f"{'bfloat16' if mixed else 'float32'} peak", images_per_s=rate, traces=traces,
               gflops=rate * flops, share_of_peak=share)
    if not SHIPPED_MODEL.is_file():
        return
    model = load_for_inference(SHIPPED_MODEL)[0]
    width, height = (640, 480) if opt.quick else (4000, 3000)
    sources = sorted((SHARED / "places365-sample").rglob("*.jpg")) if SHARED.is_dir() else []
    if sources:
        image = Image.open(sources[0]).convert("L").resize((width, height), Image.BICUBIC)
    else:
        image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width), dtype=np.uint8))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        image.save(path, quality=90)
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            photo_io.save(photos.colorize_image(model, photos.read_image(path), 128), Path(tmp) / "out.png", "PNG")
            seconds.append(time.perf_counter() - start)
    record(f"colorize.py, shipped model, {width}x{height} grey jpeg", f"{seconds[1]:.2f} s",
           f"{width * height / 1e6:.0f} megapixels, read to PNG written; first photo {seconds[0]:.2f} s (traces)",
           seconds=seconds[1], first_seconds=seconds[0])


def evaluation_rate(images, n, mixed, batch):
    """Images/s of test.py's evaluation (accuracy and MAE) at 32x32, after a warm-up batch."""
    model = ColorizationModel(architecture("gan", PRESETS["cifar10"]["encoder"], 2, 32, mixed))
    source = array_source(images[:n], drop_grayscale=False)
    evaluation.evaluate(model, source, batch, limit=batch, names=("accuracy", "mae"))  # traces
    start = time.perf_counter()
    evaluation.evaluate(model, source, batch, names=("accuracy", "mae"))
    return n / (time.perf_counter() - start)


def inference(opt, images, tmp, record):
    """test.py's evaluation at 32x32 (accuracy and MAE), and colorize.py on big photos."""
    n, batch = (200, 100) if opt.quick else (5000, 250)
    flops = generator_gflops(PRESETS["cifar10"]["encoder"], 32)
    rates = {}
    for mixed in (False, True):
        rate = rates[mixed] = evaluation_rate(images, n, mixed, batch)
        name = "mixed (--mixed-precision)" if mixed else "float32"
        record(f"evaluation cifar10 {name} (test.py path)", f"{rate:.0f} img/s",
               f"10,000 images in {10000 / rate:.0f} s; the generator's {flops:.2f} GFLOP/image at "
               f"{rate * flops:.0f} GFLOP/s", images_per_s=rate, gflops_per_image=flops, seconds_10k=10000 / rate)
    record("mixed / float32 evaluation", f"{rates[True] / rates[False]:.2f}x", ratio=rates[True] / rates[False])
    sizes = [(320, 240)] if opt.quick else [(1920, 1080), (4000, 3000)]
    for size, (first, warm) in colorize_times(tmp, sizes).items():
        record(f"colorize.py {size} jpeg", f"{warm:.2f} s", f"first photo {first:.2f} s (traces)",
               seconds=warm, first_seconds=first)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="about two minutes: the CIFAR-10 GAN at batch 8, one step of each, small samples")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--profile-dir", help="where the 'profile' section writes its tf.profiler traces "
                                         "(TensorBoard's profile tab; default: a temporary folder)")
    p.add_argument("--only", action="append", choices=SECTIONS,
                   help="run only this section (repeatable); ratios to a step need 'steps'")
    opt = p.parse_args(argv)
    sections = set(opt.only or SECTIONS)
    steps = 1 if opt.quick else 3
    batches = {"cifar10": 8 if opt.quick else 128, "places365": 16}
    results = {"machine": {"cpus": os.cpu_count(), "tensorflow": tf.__version__, "cpu": cpu_description()},
               "quick": opt.quick}
    rows = []
    began = time.perf_counter()

    def record(name, value, note="", **numbers):
        print(f"{time.perf_counter() - began:6.0f} s  {name}: {value}", file=sys.stderr, flush=True)
        rows.append((name, value, note))
        results[name] = numbers

    # 0. The machine's peaks, which every step is reported against.
    peaks = {}
    if sections & {"steps", "inference", "photo"}:
        for mixed, dtype in ((False, tf.float32), (True, tf.bfloat16)):
            peak, matmul, convolution = machine_peak(dtype)
            peaks[mixed] = peak
            record(f"{dtype.name} machine peak", f"{peak:.0f} GFLOP/s",
                   f"the faster of a 2048x2048 matrix product, {matmul:.0f}, and a 3x3 convolution (256 "
                   f"channels, 32x32, batch 32), {convolution:.0f}", gflops=peak, matmul_gflops=matmul,
                   convolution_gflops=convolution)

    # 1. The bare training step, on tensors already in memory.
    presets = ["cifar10"] if opt.quick else ["cifar10", "places365"]
    step_rates = {}
    kinds = ["gan"] if opt.quick else ["gan", "unet"]
    configurations = [(preset, kind, mixed) for preset in presets for kind in kinds for mixed in (False, True)]
    for preset, kind, mixed in configurations if "steps" in sections else []:
        rate, traces = bare_step(preset, kind, mixed, steps if preset == "cifar10" and not mixed else 1,
                                 batches[preset])
        step_rates[(preset, kind, mixed)] = rate
        achieved = rate * step_gflops(preset, kind)
        # On GPUs --mixed-precision is float16, whose peak this does not measure.
        share = achieved / peaks[mixed]
        record(f"step {preset} {kind} {'mixed' if mixed else 'float32'}", f"{rate:.1f} img/s",
               f"batch {batches[preset]}, traced {traces}x; {achieved:.0f} GFLOP/s, {share:.0%} of the "
               f"{'bfloat16' if mixed else 'float32'} peak", images_per_s=rate, traces=traces,
               gflops=achieved, share_of_peak=share)
    for preset, kind in [(p, k) for p in presets for k in kinds] if "steps" in sections else []:
        ratio = step_rates[(preset, kind, True)] / step_rates[(preset, kind, False)]
        record(f"mixed / float32 step, {preset} {kind}", f"{ratio:.2f}x", ratio=ratio)
    if not opt.quick and "steps" in sections:
        for kind, mixed in [(k, m) for k in kinds for m in (False, True)]:
            rate, _ = bare_step("cifar10", kind, mixed, 1, batches["cifar10"], implementation="plain")
            ratio = step_rates[("cifar10", kind, mixed)] / rate
            share = rate * step_gflops("cifar10", kind) / peaks[mixed]
            record(f"step cifar10 {kind} {'mixed' if mixed else 'float32'} --implementation plain",
                   f"{rate:.1f} img/s", f"Keras' own layers; the memory-saving ones are {ratio:.2f}x this; "
                   f"{share:.0%} of the peak", images_per_s=rate, lowmem_speedup=ratio, share_of_peak=share)
        # What the weight average of --recipe fast costs a step and what one G step per batch buys
        # (bfloat16, where the difference is a larger share): each timed against the step without
        # it over the same number of steps, as a pair.
        variants = [(kind, "--g-ema 0.999", {"g_ema": 0.999}, "the step without the weight average")
                    for kind in kinds]
        variants += [("gan", "--g-steps 1", {"g_steps": 1}, "the reference's two G steps per batch")] * ("gan" in kinds)
        for kind, flag, change, compared in variants:
            without, _ = bare_step("cifar10", kind, True, steps, batches["cifar10"])
            rate, _ = bare_step("cifar10", kind, True, steps, batches["cifar10"], **change)
            record(f"step cifar10 {kind} mixed {flag}", f"{rate:.1f} img/s",
                   f"{rate / without:.2f}x {compared} ({without:.1f} img/s, timed beside it)",
                   images_per_s=rate, ratio=rate / without)
        rate, traces = bare_step("cifar10", "gan", False, steps, batches["cifar10"], xla=True)
        ratio = rate / step_rates[("cifar10", "gan", False)]
        record("step cifar10 gan float32 --xla", f"{rate:.1f} img/s", f"{ratio:.2f}x float32 without XLA",
               images_per_s=rate, traces=traces, ratio=ratio)

    # 2. Where the step's time goes (tf.profiler), float32 and bfloat16, CIFAR-10 GAN at batch 128.
    for mixed in (False, True) if "profile" in sections and not opt.quick else ():
        precision = "mixed" if mixed else "float32"
        logdir = Path(opt.profile_dir or tempfile.mkdtemp()) / f"cifar10_gan_{precision}"
        seconds, wall = profile_step("gan", mixed, 3, batches["cifar10"], logdir)
        total = sum(seconds.values())
        groups = {}
        for op_type, value in seconds.items():
            groups[op_group(op_type)] = groups.get(op_group(op_type), 0.0) + value
        top = sorted(seconds.items(), key=lambda item: -item[1])[:6]
        # The step's share of the peak if every op but the convolutions took no time (their share
        # of the op time taken as their share of the wall time): the ceiling of removing the rest.
        step_share = step_rates.get(("cifar10", "gan", mixed), 0) * step_gflops("cifar10", "gan") / peaks.get(mixed, 1e99)
        ceiling = step_share / (groups.get("convolution", 0) / total) if step_share else None
        record(f"profile cifar10 gan {precision}: op time by kind",
               ", ".join(f"{group} {value / total:.0%}" for group, value in sorted(groups.items(), key=lambda g: -g[1])),
               f"op time summed over inter-op threads, {total / wall:.2f}x the wall time; top ops: "
               + ", ".join(f"{name} {value / total:.0%}" for name, value in top)
               + (f"; with only the convolutions' time the step would reach {ceiling:.0%} of the peak" if ceiling else "")
               + f"; trace in {logdir}",
               groups={g: v / total for g, v in groups.items()}, ops={k: v / total for k, v in seconds.items()},
               op_seconds_per_wall_second=total / wall, convolutions_only_share_of_peak=ceiling)

    # 3. Input pipelines alone, per core, as a multiple of the step that consumes them.
    cifar_dir, images = cifar_images()
    tmp = Path(tempfile.mkdtemp())
    jpegs = tmp / "jpegs"
    jpegs.mkdir()
    paths = jpeg_folder(jpegs, 48 if opt.quick else 320)
    cores = os.cpu_count()
    pipelines = []
    if "pipelines" in sections:
        pipelines = [("pipeline cifar10 pickles",
                      pipeline_rate(train_batches(array_source(images), 128, 0, 0), 10 if opt.quick else 100),
                      step_rates.get(("cifar10", "gan", False))),
                     ("pipeline 256x256 jpeg folder",
                      pipeline_rate(train_batches(file_source(paths, 256), 16, 0, 0), len(paths) // 16 - 1),
                      step_rates.get(("places365", "gan", False)))]
    for name, rate, step in pipelines:
        record(name, f"{rate:.0f} img/s ({rate / cores:.0f} per core)",
               f"{rate / step:.1f}x the gan step" if step else "",
               images_per_s=rate, per_core=rate / cores, x_step=rate / step if step else None)

    # 4. Inference: test.py's evaluation at 32x32 (accuracy and MAE), and colorize.py on big photos.
    if "inference" in sections:
        inference(opt, images, tmp, record)

    # 6. Photographs: the photo recipe's step and the shipped model on a 12-megapixel photo.
    if "photo" in sections:
        photo_section(opt, peaks, record)

    # 2 and 5. The whole loop as train.py runs it, and the peak memory of training runs.
    with tempfile.TemporaryDirectory() as cwd:
        if cifar_dir is not None and "loop" in sections:
            args = ["--dataset", "cifar10", "--dataset-path", str(cifar_dir), "--checkpoints-path", "cifar",
                    "--batch-size", str(batches["cifar10"]), "--max-steps", "4" if opt.quick else "15",
                    "--log-interval", "2" if opt.quick else "5"]
            log, peak = train_run(args, cwd)
            loop = float(np.mean([float(r["images_per_s"]) for r in log[1:]]))
            step = step_rates.get(("cifar10", "gan", False))
            ratio = loop / step if step else None
            record("whole loop cifar10 gan (train.py)", f"{loop:.1f} img/s",
                   f"{ratio:.0%} of the bare step" if step else "", images_per_s=loop, x_step=ratio)
            record("peak memory cifar10 training", f"{peak:.0f} MB", peak_mb=peak)
        if not opt.quick and "memory" in sections:
            for count, mixed in ((64, False), (len(paths), False), (64, True)):
                folder = Path(cwd) / f"places_{count}"
                if not folder.is_dir():
                    folder.mkdir()
                    for path in paths[:count]:
                        os.link(path, folder / Path(path).name)
                run = f"places_{count}_{'mixed' if mixed else 'float32'}"
                _, peak = train_run(["--dataset", "folder", "--dataset-path", str(folder), "--image-size", "256",
                                     "--checkpoints-path", run, "--max-steps", "2", "--log-interval", "1",
                                     "--eval-images", "16"] + (["--mixed-precision"] if mixed else []), cwd)
                record(f"peak memory places365-preset training, {count} images"
                       + (", --mixed-precision" if mixed else ""), f"{peak:.0f} MB",
                       "folder of 256x256 JPEGs, batch 16", peak_mb=peak, images=count, mixed=mixed)
    if cifar_dir is not None:
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
