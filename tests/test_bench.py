import dataclasses
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED


@pytest.mark.slow
def test_bench_quick_runs_and_writes_well_formed_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "tools/bench.py", "--quick", "--json", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["quick"] is True
    for name in ("step cifar10 gan float32", "step cifar10 gan mixed"):
        assert data[name]["images_per_s"] > 0
        assert data[name]["traces"] == 1  # one trace per input shape
        assert data[name]["share_of_peak"] > 0  # the FLOP counts are checked below, not timings
    for kind in ("unet", "gan"):  # float32 only: the quick run's bfloat16 is the CIFAR-10 step's
        assert data[f"step photo recipe {kind} (unet-narrow 32) float32"]["images_per_s"] > 0
    assert data["colorize.py, shipped model, 640x480 grey jpeg"]["seconds"] > 0
    assert data["pipeline cifar10 pickles"]["images_per_s"] > 0
    assert data["evaluation cifar10 float32 (test.py path)"]["images_per_s"] > 0
    for precision in ("float32", "bfloat16"):  # the faster of the two kernels
        peak = data[f"{precision} machine peak"]
        assert peak["gflops"] == max(peak["matmul_gflops"], peak["convolution_gflops"]) > 0
    assert data["colorize.py 320x240 jpeg"]["seconds"] > 0
    if (SHARED / "cifar10" / "make_cifar10.py").is_file():  # the whole loop needs the real CIFAR-10
        assert data["whole loop cifar10 gan (train.py)"]["images_per_s"] > 0
        assert 100 < data["peak memory cifar10 training"]["peak_mb"] < 24 * 1024
    loop = data["whole loop photo recipe unet float32 (train.py)"]  # real photos, or generated JPEGs without them
    assert loop["images_per_s"] > 0 and loop["x_step"] > 0 and 100 < loop["peak_mb"] < 24 * 1024
    table = result.stdout.splitlines()
    assert table[0] == "| measurement | value | note |"
    assert len(table) == 2 + sum(1 for key in data if key not in ("machine", "quick"))



def hand_counted_unet_gflops(encoder, size):
    """Multiply-adds x 2 of one U-Net forward pass (models/generator.py), counted by hand: 4x4
    convolutions down, 4x4 stride-2 transposed convolutions up (each output pixel sees 2x2 of the
    taps), a 1x1 head to two channels."""
    macs, channels, skips = 0, 1, []
    for filters, stride in encoder:
        size //= stride
        macs += size * size * 16 * channels * filters
        channels = filters
        skips.append(filters)
    for filters, skip in zip([f for f, _ in encoder[:-1]][::-1], skips[-2::-1]):
        size *= 2
        macs += size * size * 4 * channels * filters
        channels = filters + skip
    macs += size * size * channels * 2
    return 2 * macs / 1e9


def test_the_graph_count_of_one_convolution_and_one_transposed_convolution_is_exact():
    import keras
    from tools import bench
    down = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 4, 2, padding="same")])
    up = keras.Sequential([keras.Input((8, 8, 8)), keras.layers.Conv2DTranspose(4, 4, 2, padding="same")])
    assert bench.graph_gflops(down, [(1, 16, 16, 3)]) * 1e9 == 2 * (8 * 8) * (4 * 4 * 3) * 8
    assert bench.graph_gflops(up, [(1, 8, 8, 8)]) * 1e9 == 2 * (8 * 8) * (4 * 4 * 8) * 4


@pytest.mark.parametrize("preset", ["cifar10", "places365"])
def test_the_step_flops_bench_reports_against_are_those_of_the_networks(preset):
    # The share of the peak is only as right as the FLOP count: the count from the built networks
    # against one by hand, and the step's multiples of G and D (bench.step_gflops' docstring).
    from tools import bench
    from models.presets import PRESETS
    size = bench.PRESET_SHAPES[preset][0]
    g = bench.generator_gflops(bench.preset_architecture(preset, "unet"))
    assert g == pytest.approx(hand_counted_unet_gflops(PRESETS[preset]["encoder"], size), rel=1e-9)
    d = (bench.step_gflops(bench.preset_architecture(preset, "gan")) - 7 * g) / 10
    assert g > 0.5 and d > 0.1
    assert bench.step_gflops(bench.preset_architecture(preset, "unet")) == pytest.approx(3 * g, rel=1e-9)


def test_the_photo_steps_flops_are_those_of_the_narrow_unet_the_checkpoint_names():
    from tools import bench
    from models.architecture import Architecture
    from models.presets import folder_preset, narrow
    preset = folder_preset(128)
    architecture = Architecture("unet", preset["encoder"], preset["dropout_layers"], 128, generator="unet-narrow")
    g = bench.generator_gflops(architecture)  # the registry's unet-narrow halves the encoder it is given
    assert g == pytest.approx(hand_counted_unet_gflops(narrow(preset["encoder"]), 128), rel=1e-9)
    assert g < 0.3 * bench.generator_gflops(dataclasses.replace(architecture, generator="unet"))


@pytest.mark.slow
def test_the_profile_finds_the_steps_convolutions_and_writes_a_trace(tmp_path):
    from tools import bench
    seconds, wall = bench.profile_step(bench.preset_architecture("cifar10", "unet"), 1, 4, tmp_path / "trace")
    assert list((tmp_path / "trace").rglob("*.xplane.pb"))  # TensorBoard's profile tab reads it
    assert wall > 0 and sum(seconds.values()) > 0
    groups = {bench.op_group(op) for op in seconds}
    assert "convolution" in groups and "batchnorm" in groups  # the U-Net's kernels, by type
    assert bench.op_group("Conv2DBackpropFilter") == "convolution"
    assert bench.op_group("_MklNativeFusedBatchNormGradV3") == "batchnorm"
    assert bench.op_group("LeakyRelu") == "element-wise and other"
    assert not any("Process" in op or "::" in op for op in seconds)  # spans that enclose ops are not ops
