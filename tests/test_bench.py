import json
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.conftest import ROOT, SHARED


@pytest.mark.slow
def test_bench_quick_runs_and_writes_well_formed_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "bench.py", "--quick", "--json", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["quick"] is True
    for name in ("step cifar10 gan float32", "step cifar10 gan mixed"):
        assert data[name]["images_per_s"] > 0
        assert data[name]["traces"] == 1  # one trace per input shape
        assert data[name]["share_of_peak"] > 0  # the FLOP counts are checked below, not timings
    for precision in ("float32", "mixed"):
        assert data[f"step photo recipe (unet-narrow 128) {precision}"]["images_per_s"] > 0
    assert data["colorize.py, shipped model, 640x480 grey jpeg"]["seconds"] > 0
    assert data["pipeline cifar10 pickles"]["images_per_s"] > 0
    assert data["evaluation cifar10 float32 (test.py path)"]["images_per_s"] > 0
    assert data["evaluation cifar10 mixed (--mixed-precision) (test.py path)"]["images_per_s"] > 0
    assert data["mixed / float32 evaluation"]["ratio"] > 0
    for precision in ("float32", "bfloat16"):  # the faster of the two kernels
        peak = data[f"{precision} machine peak"]
        assert peak["gflops"] == max(peak["matmul_gflops"], peak["convolution_gflops"]) > 0
    assert data["colorize.py 320x240 jpeg"]["seconds"] > 0
    if (SHARED / "cifar10" / "make_cifar10.py").is_file():  # the whole loop needs the real CIFAR-10
        assert data["whole loop cifar10 gan (train.py)"]["images_per_s"] > 0
        assert 100 < data["peak memory cifar10 training"]["peak_mb"] < 24 * 1024
    table = result.stdout.splitlines()
    assert table[0] == "| measurement | value | note |"
    assert len(table) == 2 + sum(1 for key in data if key not in ("machine", "quick"))



def graph_gflops(model, shapes):
    """FLOPs of a model's convolutions as TensorFlow's own op statistics count them."""
    from tensorflow.python.framework import ops
    function = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0], training=False))
    graph = function.get_concrete_function(*[tf.TensorSpec(s, tf.float32) for s in shapes]).graph
    return sum(ops.get_stats_for_node_def(graph, op.node_def, "flops").value for op in graph.get_operations()
               if op.type in ("Conv2D", "Conv2DBackpropInput")) / 1e9


@pytest.mark.parametrize("preset", ["cifar10", "places365"])
def test_the_step_flops_bench_reports_against_are_those_of_the_networks(preset):
    # The share of the peak is only as right as the FLOP count: count the plain Keras networks'
    # convolutions with TensorFlow's statistics and compare.
    import bench
    from models.lowmem.discriminator import build_discriminator
    from models.presets import PRESETS
    from models.generator import build_generator as plain_keras_generator
    size = bench.PRESET_SHAPES[preset][0]
    g = graph_gflops(plain_keras_generator(PRESETS[preset]["encoder"], PRESETS[preset]["dropout_layers"]),
                     [(1, size, size, 1)])
    d = graph_gflops(build_discriminator(), [(1, size, size, 1), (1, size, size, 2)])
    assert g > 0.5 and d > 0.1
    assert bench.step_gflops(preset, "unet") == pytest.approx(3 * g, rel=1e-9)
    assert bench.step_gflops(preset, "gan") == pytest.approx(7 * g + 10 * d, rel=1e-9)


def test_the_photo_steps_flops_are_those_of_the_narrow_unet():
    import bench
    from models.generator import build_narrow_generator
    from models.presets import folder_preset, narrow
    preset = folder_preset(128)
    g = graph_gflops(build_narrow_generator(preset["encoder"], preset["dropout_layers"]), [(1, 128, 128, 1)])
    assert g > 0.1 and bench.generator_gflops(narrow(preset["encoder"]), 128) == pytest.approx(g, rel=1e-9)


@pytest.mark.slow
def test_the_profile_finds_the_steps_convolutions_and_writes_a_trace(tmp_path):
    import bench
    seconds, wall = bench.profile_step("unet", False, 1, 4, tmp_path / "trace")
    assert list((tmp_path / "trace").rglob("*.xplane.pb"))  # TensorBoard's profile tab reads it
    assert wall > 0 and sum(seconds.values()) > 0
    groups = {bench.op_group(op) for op in seconds}
    assert "convolution" in groups and "batchnorm" in groups  # the U-Net's kernels, by type
    assert bench.op_group("Conv2DBackpropFilter") == "convolution"
    assert bench.op_group("_MklNativeFusedBatchNormGradV3") == "batchnorm"
    assert bench.op_group("LeakyRelu") == "element-wise and other"
    assert not any("Process" in op or "::" in op for op in seconds)  # spans that enclose ops are not ops
