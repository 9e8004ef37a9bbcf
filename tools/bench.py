"""Measured speed on the machine it runs on: training step, whole loop, input pipelines, inference,
peak memory and retracing, as ratios from one run.

    python tools/bench.py [--quick] [--json FILE]

Uses the real data of ../shared/datasets (or COLORGAN_SHARED_DATASETS) when present, generated
images otherwise.  A benchmark, not a test: run it alone, nothing else on the machine.
"""
import csv
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project's root: python tools/bench.py

from util.quiet import quiet_tensorflow
from util.script import start_script

if __name__ == "__main__":
    start_script()
    quiet_tensorflow()  # before TensorFlow's first import

import numpy as np
import tensorflow as tf

from evaluation import scoring
from data.pipeline import array_source, file_source, train_batches
from options import TrainingConfig
from models.architecture import Architecture
from models.colorization import ColorizationModel
from models.presets import PRESETS, folder_preset
from models.registry import DISCRIMINATORS, GENERATORS, builder

ROOT = Path(__file__).resolve().parents[1]  # the project's root
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
    architecture = preset_architecture(preset, kind, mixed)
    return architecture_step(architecture, steps, batch, xla=xla, implementation=implementation, g_ema=g_ema, g_steps=g_steps)


def architecture_step(architecture, steps, batch, **hparams):
    """Images/s of the training step of the model `architecture` describes, and its trace count;
    `hparams`: fields of options.TrainingConfig."""
    size = architecture.image_size
    model = ColorizationModel(architecture, TrainingConfig(batch_size=batch, **hparams))
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


def profile_step(architecture, steps, batch, logdir, **hparams):
    """Seconds per op type in `steps` training steps of the model `architecture` describes, from a
    tf.profiler trace (written to `logdir`, viewable in TensorBoard's profile tab): summed over
    TensorFlow's inter-op threads; `hparams`: fields of options.TrainingConfig."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    size = architecture.image_size
    model = ColorizationModel(architecture, TrainingConfig(batch_size=batch, **hparams))
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


def matmul_rate(dtype=tf.float32, n=2048, repeats=10):
    """An n x n matrix product in `dtype`, in GFLOP/s."""
    a = tf.cast(tf.random.normal((n, n)), dtype)
    product = tf.function(lambda m: m @ m)
    seconds = timed(lambda: product(a).numpy(), repeats)
    return 2 * n ** 3 / seconds / 1e9


def convolution_rate(dtype=tf.float32, batch=32, size=32, channels=256, repeats=10):
    """A 3x3 'same' convolution of `channels` to `channels` channels in `dtype`, in GFLOP/s."""
    x = tf.cast(tf.random.normal((batch, size, size, channels)), dtype)
    kernel = tf.cast(tf.random.normal((3, 3, channels, channels)), dtype)
    convolution = tf.function(lambda x: tf.nn.conv2d(x, kernel, 1, "SAME"))
    seconds = timed(lambda: convolution(x).numpy(), repeats)
    return 2 * batch * size * size * 9 * channels * channels / seconds / 1e9


def machine_peak(dtype, quick=False):
    """The machine's peak as TensorFlow reaches it: the faster of a large matrix product and a
    large convolution. A matrix product alone can read low: on 2 cores of an AMD EPYC with
    avx512_bf16 one run measured 200 float32 GFLOP/s for it while the U-Net's step reached 290, so
    the step read as 145 % of the peak (the convolution: 432; the product, an hour later, 392)."""
    if quick:  # a smoke test's figure: a fraction of the work, read low
        matmul, convolution = matmul_rate(dtype, 512, 2), convolution_rate(dtype, 4, repeats=2)
    else:
        matmul, convolution = matmul_rate(dtype), convolution_rate(dtype)
    return max(matmul, convolution), matmul, convolution


def graph_gflops(network, shapes):
    """Multiply-adds x 2 of one forward pass of a built network, its convolutions (and transposed
    convolutions) as TensorFlow's own op statistics count them in its traced graph; `shapes`: one
    per input, batch included."""
    from tensorflow.python.framework import ops
    function = tf.function(lambda *x: network(list(x) if len(x) > 1 else x[0], training=False))
    graph = function.get_concrete_function(*[tf.TensorSpec(s, tf.float32) for s in shapes]).graph
    return sum(ops.get_stats_for_node_def(graph, op.node_def, "flops").value for op in graph.get_operations()
               if op.type in ("Conv2D", "Conv2DBackpropInput")) / 1e9


@functools.lru_cache(maxsize=None)
def _network_gflops(kind, name, encoder, dropout_layers, size):
    if kind == "generator":
        network = builder(GENERATORS, name, "plain")([list(layer) for layer in encoder], dropout_layers)
        return graph_gflops(network, [(1, size, size, 1)])
    return graph_gflops(builder(DISCRIMINATORS, name, "plain")(), [(1, size, size, 1), (1, size, size, 2)])


def generator_gflops(architecture):
    """FLOPs of one forward pass of the generator `architecture` (models/architecture.py)
    names, on one image at its size: counted in the network as built (its plain implementation,
    the same maths as the memory-saving one)."""
    return _network_gflops("generator", architecture.generator, architecture.encoder, architecture.dropout_layers,
                           architecture.image_size)


def step_gflops(architecture):
    """Model FLOPs of one training step per image, convolutions only, by the usual convention
    that a trained layer's backward pass costs twice its forward pass (input and weight gradients).

    U-Net: G forward and backward, 3 G.  GAN: the D step is G forward plus D forward and backward
    on the real and the fake batch (G + 6 D); each of the two G steps is G forward and backward
    plus D forward and its input gradient (3 G + 2 D): 7 G + 10 D in all.
    """
    g = generator_gflops(architecture)
    if architecture.model == "unet":
        return 3 * g
    d = _network_gflops("discriminator", architecture.discriminator, (), 0, architecture.image_size)
    return 7 * g + 10 * d


def preset_architecture(preset, kind, mixed=False):
    """The architecture of a README run: CIFAR-10 at 32x32 or Places365 at 256x256."""
    return Architecture(kind, PRESETS[preset]["encoder"], PRESETS[preset]["dropout_layers"],
                        PRESET_SHAPES[preset][0], mixed)


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

    from inference import photo_io
    from inference import photos
    model = ColorizationModel(Architecture("gan", PRESETS["places365"]["encoder"], 3, 256), TrainingConfig())
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


class Bench:
    """What the sections share: the options, the rows and results so far, the machine's peaks and
    the step rates that later sections are compared to."""

    def __init__(self, opt):
        self.opt = opt
        self.steps = 1 if opt.quick else 3
        self.batches = {"cifar10": 8 if opt.quick else 128, "places365": 16}
        self.presets = ["cifar10"] if opt.quick else ["cifar10", "places365"]
        self.kinds = ["gan"] if opt.quick else ["gan", "unet"]
        self.results = {"machine": {"cpus": os.cpu_count(), "tensorflow": tf.__version__, "cpu": cpu_description()},
                        "quick": opt.quick}
        self.rows, self.peaks, self.step_rates = [], {}, {}
        self.began = time.perf_counter()

    def record(self, name, value, note="", **numbers):
        print(f"{time.perf_counter() - self.began:6.0f} s  {name}: {value}", file=sys.stderr, flush=True)
        self.rows.append((name, value, note))
        self.results[name] = numbers

    def record_step(self, name, rate, traces, architecture, batch):
        """A training step's images/s against the machine's peak in its precision."""
        achieved = rate * step_gflops(architecture)
        mixed = architecture.mixed_precision
        share = achieved / self.peaks[mixed]  # on GPUs --mixed-precision is float16, whose peak this does not measure
        self.record(name, f"{rate:.1f} img/s", f"batch {batch}, traced {traces}x; {achieved:.0f} GFLOP/s, "
                    f"{share:.0%} of the {'bfloat16' if mixed else 'float32'} peak", images_per_s=rate,
                    traces=traces, gflops=achieved, share_of_peak=share)


def peaks_section(b):
    """The machine's peaks, which every step is reported against."""
    for mixed, dtype in ((False, tf.float32), (True, tf.bfloat16)):
        peak, matmul, convolution = machine_peak(dtype, b.opt.quick)
        b.peaks[mixed] = peak
        b.record(f"{dtype.name} machine peak", f"{peak:.0f} GFLOP/s",
                 f"the faster of a 2048x2048 matrix product, {matmul:.0f}, and a 3x3 convolution (256 "
                 f"channels, 32x32, batch 32), {convolution:.0f}", gflops=peak, matmul_gflops=matmul,
                 convolution_gflops=convolution)


def steps_section(b):
    """The bare training step on tensors already in memory: each preset, model and precision; then
    (full runs) Keras' own layers, the weight average, one G step and XLA, each against the step."""
    for preset, kind, mixed in [(p, k, m) for p in b.presets for k in b.kinds for m in (False, True)]:
        rate, traces = bare_step(preset, kind, mixed, b.steps if preset == "cifar10" and not mixed else 1,
                                 b.batches[preset])
        b.step_rates[(preset, kind, mixed)] = rate
        b.record_step(f"step {preset} {kind} {'mixed' if mixed else 'float32'}", rate, traces,
                      preset_architecture(preset, kind, mixed), b.batches[preset])
    for preset, kind in [(p, k) for p in b.presets for k in b.kinds]:
        ratio = b.step_rates[(preset, kind, True)] / b.step_rates[(preset, kind, False)]
        b.record(f"mixed / float32 step, {preset} {kind}", f"{ratio:.2f}x", ratio=ratio)
    if b.opt.quick:
        return
    batch = b.batches["cifar10"]
    for kind, mixed in [(k, m) for k in b.kinds for m in (False, True)]:
        rate, _ = bare_step("cifar10", kind, mixed, 1, batch, implementation="plain")
        ratio = b.step_rates[("cifar10", kind, mixed)] / rate
        share = rate * step_gflops(preset_architecture("cifar10", kind, mixed)) / b.peaks[mixed]
        b.record(f"step cifar10 {kind} {'mixed' if mixed else 'float32'} --implementation plain",
                 f"{rate:.1f} img/s", f"Keras' own layers; the memory-saving ones are {ratio:.2f}x this; "
                 f"{share:.0%} of the peak", images_per_s=rate, lowmem_speedup=ratio, share_of_peak=share)
    # What the weight average of --recipe fast costs a step and what one G step per batch buys
    # (bfloat16, where the difference is a larger share): each timed against the step without it
    # over the same number of steps, as a pair.
    variants = [(kind, "--g-ema 0.999", {"g_ema": 0.999}, "the step without the weight average")
                for kind in b.kinds]
    variants += [("gan", "--g-steps 1", {"g_steps": 1}, "the reference's two G steps per batch")] * ("gan" in b.kinds)
    for kind, flag, change, compared in variants:
        without, _ = bare_step("cifar10", kind, True, b.steps, batch)
        rate, _ = bare_step("cifar10", kind, True, b.steps, batch, **change)
        b.record(f"step cifar10 {kind} mixed {flag}", f"{rate:.1f} img/s",
                 f"{rate / without:.2f}x {compared} ({without:.1f} img/s, timed beside it)",
                 images_per_s=rate, ratio=rate / without)
    rate, traces = bare_step("cifar10", "gan", False, b.steps, batch, xla=True)
    ratio = rate / b.step_rates[("cifar10", "gan", False)]
    b.record("step cifar10 gan float32 --xla", f"{rate:.1f} img/s", f"{ratio:.2f}x float32 without XLA",
             images_per_s=rate, traces=traces, ratio=ratio)


def photo_architecture(kind, mixed, size=128):
    """The architecture of `train.py --recipe photo` (the half-width U-Net) at `size`."""
    preset = folder_preset(size)
    return Architecture(kind, preset["encoder"], preset["dropout_layers"], size, mixed, generator="unet-narrow")


PHOTO_RECIPE = {"zero_head": True, "g_ema": 0.999}  # the photo recipe's fields that change the step


def profile_section(b):
    """Where the step's time goes (tf.profiler): the CIFAR-10 GAN at batch 128, and the photo
    recipe's U-Net and GAN at 128x128, batch 16, in float32 and bfloat16."""
    cases = [("cifar10 gan", preset_architecture("cifar10", "gan", mixed), b.batches["cifar10"], {},
              b.step_rates.get(("cifar10", "gan", mixed)), mixed) for mixed in (False, True)]
    cases += [(f"photo {kind} 128", photo_architecture(kind, mixed), 16, PHOTO_RECIPE,
               b.step_rates.get(("photo", kind, mixed)), mixed) for kind in ("unet", "gan") for mixed in (False, True)]
    for name, architecture, batch, hparams, rate, mixed in cases:
        precision = "mixed" if mixed else "float32"
        logdir = Path(b.opt.profile_dir or tempfile.mkdtemp()) / f"{name.replace(' ', '_')}_{precision}"
        seconds, wall = profile_step(architecture, 3, batch, logdir, **hparams)
        total = sum(seconds.values())
        groups = {}
        for op_type, value in seconds.items():
            groups[op_group(op_type)] = groups.get(op_group(op_type), 0.0) + value
        top = sorted(seconds.items(), key=lambda item: -item[1])[:8]
        # The step's share of the peak if every op but the convolutions took no time (their share
        # of the op time taken as their share of the wall time): the ceiling of removing the rest.
        step_share = (rate or 0) * step_gflops(architecture) / b.peaks.get(mixed, 1e99)
        ceiling = step_share / (groups.get("convolution", 0) / total) if step_share else None
        b.record(f"profile {name} {precision}: op time by kind",
                 ", ".join(f"{group} {value / total:.0%}" for group, value in sorted(groups.items(), key=lambda g: -g[1])),
                 f"{batch / wall * 3:.1f} img/s while traced; op time summed over inter-op threads, "
                 f"{total / wall:.2f}x the wall time; top ops: "
                 + ", ".join(f"{op} {value / total:.0%}" for op, value in top)
                 + (f"; with only the convolutions' time the step would reach {ceiling:.0%} of the peak" if ceiling else "")
                 + f"; trace in {logdir}",
                 groups={g: v / total for g, v in groups.items()}, ops={k: v / total for k, v in seconds.items()},
                 op_seconds_per_wall_second=total / wall, convolutions_only_share_of_peak=ceiling)


def pipelines_section(b, images, paths):
    """The input pipelines alone, per core, as a multiple of the step that consumes them."""
    cores = os.cpu_count()
    pipelines = [("pipeline cifar10 pickles",
                  pipeline_rate(train_batches(array_source(images), 128, 0, 0), 10 if b.opt.quick else 100),
                  b.step_rates.get(("cifar10", "gan", False))),
                 ("pipeline 256x256 jpeg folder",
                  pipeline_rate(train_batches(file_source(paths, 256), 16, 0, 0), len(paths) // 16 - 1),
                  b.step_rates.get(("places365", "gan", False)))]
    for name, rate, step in pipelines:
        b.record(name, f"{rate:.0f} img/s ({rate / cores:.0f} per core)",
                 f"{rate / step:.1f}x the gan step" if step else "",
                 images_per_s=rate, per_core=rate / cores, x_step=rate / step if step else None)


def evaluation_rate(images, n, mixed, batch):
    """Images/s of test.py's evaluation (accuracy and MAE) at 32x32, after a warm-up batch."""
    model = ColorizationModel(preset_architecture("cifar10", "gan", mixed), TrainingConfig())
    source = array_source(images[:n], drop_grayscale=False)
    scoring.evaluate(model, source, batch, limit=batch, names=("accuracy", "mae"))  # traces
    start = time.perf_counter()
    scoring.evaluate(model, source, batch, names=("accuracy", "mae"))
    return n / (time.perf_counter() - start)


def inference_section(b, images, tmp):
    """test.py's evaluation at 32x32 (accuracy and MAE), and colorize.py on big photos."""
    n, batch = (200, 100) if b.opt.quick else (5000, 250)
    flops = generator_gflops(preset_architecture("cifar10", "gan"))
    rates = {}
    for mixed in (False,) if b.opt.quick else (False, True):  # quick: the CIFAR-10 step tries bfloat16
        rate = rates[mixed] = evaluation_rate(images, n, mixed, batch)
        name = "mixed (--mixed-precision)" if mixed else "float32"
        b.record(f"evaluation cifar10 {name} (test.py path)", f"{rate:.0f} img/s",
                 f"10,000 images in {10000 / rate:.0f} s; the generator's {flops:.2f} GFLOP/image at "
                 f"{rate * flops:.0f} GFLOP/s", images_per_s=rate, gflops_per_image=flops, seconds_10k=10000 / rate)
    if True in rates:
        b.record("mixed / float32 evaluation", f"{rates[True] / rates[False]:.2f}x", ratio=rates[True] / rates[False])
    sizes = [(320, 240)] if b.opt.quick else [(1920, 1080), (4000, 3000)]
    for size, (first, warm) in colorize_times(tmp, sizes).items():
        b.record(f"colorize.py {size} jpeg", f"{warm:.2f} s", f"first photo {first:.2f} s (traces)",
                 seconds=warm, first_seconds=first)


def update_times(b):
    """The photo generator's weight updates alone, per step: Keras' Adam against models/adam.py's
    fused one, and the weight average (the photo recipe's --g-ema)."""
    import keras

    from models.adam import Adam
    model = ColorizationModel(photo_architecture("unet", True), TrainingConfig(batch_size=16, **PHOTO_RECIPE))
    variables = model.generator.trainable_variables
    rng = np.random.default_rng(0)
    gradients = [tf.constant(rng.normal(0, 1e-3, v.shape), tf.float32) for v in variables]
    times, repeats = {}, 3 if b.opt.quick else 20
    for name, kind in (("keras", keras.optimizers.Adam), ("fused", Adam)):
        optimizer = kind(learning_rate=1e-4, beta_1=0.0, beta_2=0.999, epsilon=1e-8)
        optimizer.build(variables)
        apply = tf.function(lambda: optimizer.apply(gradients, variables))
        times[name] = timed(apply, repeats)
    average = timed(tf.function(model.weight_average.update), repeats)
    n = sum(int(np.prod(v.shape)) for v in variables)
    b.record("photo generator update, Adam (Keras / fused)", f"{1e3 * times['keras']:.1f} / {1e3 * times['fused']:.1f} ms",
             f"{n / 1e6:.1f} M weights; fused {times['keras'] / times['fused']:.2f}x; the weight average "
             f"{1e3 * average:.1f} ms", keras_ms=1e3 * times["keras"], fused_ms=1e3 * times["fused"],
             average_ms=1e3 * average)


def photo_section(b):
    """The photo recipe's training step (train.py --recipe photo: the half-width U-Net at 128x128,
    batch 16, weight average on) against the machine's peak, and the shipped photo model on a
    12-megapixel photo through colorize.py's path."""
    from PIL import Image

    from inference import photo_io
    from inference import photos
    from inference.loading import load_for_inference
    from options import SHIPPED_MODEL
    batch, size = (4, 32) if b.opt.quick else (16, 128)
    precisions = (False,) if b.opt.quick else (False, True)  # quick: the CIFAR-10 step tries bfloat16
    for kind, mixed in [(k, m) for k in ("unet", "gan") for m in precisions]:
        architecture = photo_architecture(kind, mixed, size)
        rate, traces = architecture_step(architecture, 1 if b.opt.quick else 3, batch, **PHOTO_RECIPE)
        b.step_rates[("photo", kind, mixed)] = rate
        b.record_step(f"step photo recipe {kind} (unet-narrow {size}) {'mixed' if mixed else 'float32'}", rate,
                      traces, architecture, batch)
    if not b.opt.quick:  # the GAN's D step on the first G step's forward pass, timed as a pair
        architecture = photo_architecture("gan", True)
        without, _ = architecture_step(architecture, 3, batch, **PHOTO_RECIPE)
        rate, _ = architecture_step(architecture, 3, batch, shared_forward=True, **PHOTO_RECIPE)
        b.record("step photo recipe gan mixed --shared-forward", f"{rate:.1f} img/s",
                 f"{rate / without:.2f}x without it ({without:.1f} img/s, timed beside it)",
                 images_per_s=rate, ratio=rate / without)
    update_times(b)
    if not SHIPPED_MODEL.is_file():
        return
    model = load_for_inference(SHIPPED_MODEL)[0]
    width, height = (640, 480) if b.opt.quick else (4000, 3000)
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
    b.record(f"colorize.py, shipped model, {width}x{height} grey jpeg", f"{seconds[1]:.2f} s",
             f"{width * height / 1e6:.0f} megapixels, read to PNG written; first photo {seconds[0]:.2f} s (traces)",
             seconds=seconds[1], first_seconds=seconds[0])


def photo_folder(folder, count=400):
    """`count` real photographs for a photo training run: Imagenette's training JPEGs (224x224)
    from ../shared's zip where it is, else jpeg_folder's."""
    import zipfile
    folder.mkdir(parents=True, exist_ok=True)
    archive = SHARED / "imagenette" / "imagenette-224.zip"
    if not archive.is_file():
        jpeg_folder(folder, count)
        return "256x256 JPEGs"
    with zipfile.ZipFile(archive) as z:
        names = sorted(n for n in z.namelist() if "/train/" in n and n.lower().endswith(".jpeg"))
        for i, name in enumerate(names[::max(1, len(names) // count)][:count]):
            (folder / f"{i:05d}.jpg").write_bytes(z.read(name))
    return "Imagenette's 224x224 JPEGs"


def photo_loop_section(b, cwd):
    """train.py's whole loop on a folder of real photographs (JPEG decoding, resizing, Lab and
    flips on the same cores as the step) against the bare photo step, and its peak memory."""
    what = photo_folder(Path(cwd) / "photos", 64 if b.opt.quick else 400)
    steps = 4 if b.opt.quick else 20
    for kind, mixed in (("unet", False),) if b.opt.quick else (("unet", False), ("unet", True), ("gan", True)):
        name = f"photo_{kind}_{'mixed' if mixed else 'float32'}"
        args = ["--dataset", "folder", "--dataset-path", "photos", "--recipe", "photo", "--model", kind,
                "--checkpoints-path", name, "--max-steps", str(steps), "--log-interval", str(steps // 4),
                "--eval-images", "16"] + (["--mixed-precision"] if mixed else []) + (
                    ["--batch-size", "4", "--image-size", "32"] if b.opt.quick else [])  # as the quick step
        log, peak = train_run(args, cwd)
        loop = float(np.mean([float(r["images_per_s"]) for r in log[1:]]))  # the first interval traces
        step = b.step_rates.get(("photo", kind, mixed))
        ratio = loop / step if step else None
        b.record(f"whole loop photo recipe {kind} {'mixed' if mixed else 'float32'} (train.py)", f"{loop:.1f} img/s",
                 (f"{ratio:.0%} of the bare step; " if step else "") + f"{what}; peak memory {peak:.0f} MB",
                 images_per_s=loop, x_step=ratio, peak_mb=peak)


def loop_section(b, cifar_dir, cwd):
    """The whole loop as train.py runs it on the real CIFAR-10, and its peak memory."""
    batch = b.batches["cifar10"]
    args = ["--dataset", "cifar10", "--dataset-path", str(cifar_dir), "--checkpoints-path", "cifar",
            "--batch-size", str(batch), "--max-steps", "4" if b.opt.quick else "15",
            "--log-interval", "2" if b.opt.quick else "5"] + (["--eval-images", "16"] if b.opt.quick else [])
    log, peak = train_run(args, cwd)
    loop = float(np.mean([float(r["images_per_s"]) for r in log[1:]]))
    step = b.step_rates.get(("cifar10", "gan", False))
    ratio = loop / step if step else None
    b.record("whole loop cifar10 gan (train.py)", f"{loop:.1f} img/s", f"{ratio:.0%} of the bare step" if step else "",
             images_per_s=loop, x_step=ratio)
    b.record("peak memory cifar10 training", f"{peak:.0f} MB", peak_mb=peak)


def memory_section(b, paths, cwd):
    """Peak memory of Places365-preset training runs on folders of 256x256 JPEGs."""
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
        b.record(f"peak memory places365-preset training, {count} images" + (", --mixed-precision" if mixed else ""),
                 f"{peak:.0f} MB", "folder of 256x256 JPEGs, batch 16", peak_mb=peak, images=count, mixed=mixed)


def main(argv=None):
    from options import Parser
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="a smoke test of every section (minutes): the CIFAR-10 GAN at batch 8 in both "
                        "precisions, the photo steps at 32x32 and the evaluation in float32 only, one step "
                        "of each, small samples")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--profile-dir", help="where the 'profile' section writes its tf.profiler traces "
                                         "(TensorBoard's profile tab; default: a temporary folder)")
    p.add_argument("--only", action="append", choices=SECTIONS,
                   help="run only this section (repeatable); ratios to a step need 'steps'")
    opt = p.parse_args(argv)
    sections = set(opt.only or SECTIONS)
    b = Bench(opt)
    if sections & {"steps", "inference", "photo"}:
        peaks_section(b)
    if "steps" in sections:
        steps_section(b)
    cifar_dir, images = cifar_images() if sections & {"pipelines", "inference", "loop"} else (None, None)
    tmp = Path(tempfile.mkdtemp())
    (tmp / "jpegs").mkdir()
    paths = jpeg_folder(tmp / "jpegs", 48 if opt.quick else 320) if sections & {"pipelines", "memory"} else []
    try:
        if "pipelines" in sections:
            pipelines_section(b, images, paths)
        if "inference" in sections:
            inference_section(b, images, tmp)
        if "photo" in sections:
            photo_section(b)
        if "profile" in sections and not opt.quick:
            profile_section(b)
        with tempfile.TemporaryDirectory() as cwd:
            if cifar_dir is not None and "loop" in sections:
                loop_section(b, cifar_dir, cwd)
            if "loop" in sections and "photo" in sections:
                photo_loop_section(b, cwd)
            if not opt.quick and "memory" in sections:
                memory_section(b, paths, cwd)
    finally:
        if cifar_dir is not None:
            shutil.rmtree(cifar_dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)

    print("| measurement | value | note |\n|---|---|---|")
    for row in b.rows:
        print("| " + " | ".join(row) + " |")
    if opt.json:
        Path(opt.json).write_text(json.dumps(b.results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
