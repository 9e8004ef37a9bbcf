"""The reference initialiser, the BatchNorm evaluation protocols, the
training seconds in eval.csv, the time budget and the quality curves."""
import csv

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import figures
import train
from models.lowmem import normalization
from models.lowmem.discriminator import build_discriminator
from models.lowmem.generator import build_generator
from models.presets import PRESETS
from tests.helpers import TINY_ENCODER, TINY_OPTIONS, image_folder

TINY = TINY_OPTIONS + ["--model", "unet", "--sample-interval", "100", "--save-interval", "100"]


def convolution_kernels(model):
    return [(layer.name, layer.kernel.numpy()) for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]


@pytest.mark.parametrize("initializer", ["reference", "glorot"])
def test_every_kernel_has_the_reference_initialisers_spread(initializer):
    # VarianceScaling(1.0, fan_in, truncated normal): standard deviation sqrt(1 / fan_in), no value
    # beyond two standard deviations of the untruncated normal (reference code; docs/recipe.md).
    # Keras' fan_in is kernel height x width x shape[-2], for transposed convolutions as in TF1.
    keras.utils.set_random_seed(0)
    preset = PRESETS["cifar10"]
    kernels = (convolution_kernels(build_generator(preset["encoder"], preset["dropout_layers"], initializer=initializer))
               + convolution_kernels(build_discriminator(initializer=initializer)))
    assert len(kernels) == 5 + 4 + 1 + 5  # encoder, decoder, colour head, discriminator
    distinct = 0
    for name, kernel in kernels:
        fan_in = kernel.shape[0] * kernel.shape[1] * kernel.shape[-2]
        fan_out = kernel.shape[0] * kernel.shape[1] * kernel.shape[-1]
        reference, glorot = np.sqrt(1.0 / fan_in), np.sqrt(2.0 / (fan_in + fan_out))
        expected = reference if initializer == "reference" else glorot
        if kernel.size >= 10000:  # enough values for the standard deviation to be within 3 %
            assert abs(kernel.std() / expected - 1) < 0.03, name
            distinct += abs(reference / glorot - 1) > 0.1
        if initializer == "reference":
            assert np.abs(kernel).max() <= 2 * expected / 0.87962566 + 1e-7, name
    assert distinct >= 5  # layers where the two initialisers differ by more than 10 %


def test_a_zero_head_predicts_grey_until_it_learns():
    # --zero-head: the untrained U-Net predicts a*b* = 0 (no colour) for any input, yet its
    # colour head still receives a gradient, so the first step moves it away from grey.
    keras.utils.set_random_seed(0)
    generator = build_generator(TINY_ENCODER, 1, zero_head=True)
    L = tf.random.uniform((2, 16, 16, 1), -1, 1)
    assert np.array_equal(generator(L, training=False).numpy(), np.zeros((2, 16, 16, 2), np.float32))
    target = tf.random.uniform((2, 16, 16, 2), -0.5, 0.5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(generator(L, training=True) - target))
    head = generator.get_layer("ab").kernel
    gradient = tape.gradient(loss, head)
    assert float(tf.reduce_max(tf.abs(gradient))) > 0
    # without the option the untrained network predicts colours
    other = build_generator(TINY_ENCODER, 1)
    assert float(tf.reduce_mean(tf.abs(other(L, training=False)))) > 0.05


def test_batch_statistics_at_inference_use_the_batch_and_leave_the_moving_averages():
    layer = normalization.BatchNormActivation(0.0)
    x = tf.constant(np.random.default_rng(0).normal(5.0, 2.0, (8, 4, 4, 3)), tf.float32)
    layer.build(x.shape)
    layer.moving_mean.assign([1.0, 2.0, 3.0])
    layer.moving_variance.assign([4.0, 4.0, 4.0])
    moving = layer(x, training=False).numpy()
    np.testing.assert_allclose(moving, np.maximum((x.numpy() - [1, 2, 3]) / np.sqrt(4 + layer.epsilon), 0), rtol=1e-5)

    layer.inference_batch_statistics = True
    batch = layer(x, training=False).numpy()
    mean, var = x.numpy().mean(axis=(0, 1, 2)), x.numpy().var(axis=(0, 1, 2))
    np.testing.assert_allclose(batch, np.maximum((x.numpy() - mean) / np.sqrt(var + layer.epsilon), 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(layer.moving_variance.numpy(), [4.0, 4.0, 4.0])


def test_the_protocol_switch_reaches_every_batchnorm_of_the_generator_and_keeps_dropout_off():
    keras.utils.set_random_seed(1)
    generator = build_generator(TINY_ENCODER, 1)
    L = tf.constant(np.random.default_rng(1).uniform(-1, 1, (4, 16, 16, 1)), tf.float32)
    moving = generator(L, training=False).numpy()
    normalization.set_inference_statistics(generator, "batch")
    norms = [layer for layer in generator._flatten_layers(include_self=False)
             if isinstance(layer, normalization.BatchNormActivation)]
    assert len(norms) == 3 + 2 and all(layer.inference_batch_statistics for layer in norms)
    before = [v.numpy() for v in generator.non_trainable_variables]
    first, second = generator(L, training=False).numpy(), generator(L, training=False).numpy()
    np.testing.assert_array_equal(first, second)  # no dropout: the same batch gives the same colours
    assert np.abs(first - moving).max() > 1e-3  # fresh moving averages (0, 1) differ from the batch's
    # Each image's colours depend on the rest of its batch, as in the reference's evaluation.
    assert np.abs(generator(L[:2], training=False).numpy() - first[:2]).max() > 1e-4
    for b, a in zip(before, generator.non_trainable_variables):
        np.testing.assert_array_equal(b, a.numpy())
    normalization.set_inference_statistics(generator, "moving")
    np.testing.assert_allclose(generator(L, training=False).numpy(), moving, atol=1e-6)
    with pytest.raises(ValueError, match="valid: moving, batch"):
        normalization.set_inference_statistics(generator, "test")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class SlowEvaluations:
    """train.py's clock, where every evaluation takes 1000 s more than it does."""

    def __init__(self, monkeypatch):
        self.offset = 0.0
        real_time, evaluate = train.time.time, train.evaluate_and_plot

        def slow_evaluate(*args):
            self.offset += 1000.0
            return evaluate(*args)
        monkeypatch.setattr(train, "time", type("Time", (), {"time": staticmethod(lambda: real_time() + self.offset)}))
        monkeypatch.setattr(train, "evaluate_and_plot", slow_evaluate)


@pytest.mark.slow
def test_eval_csv_has_training_seconds_across_a_resume_and_the_budget_stops_the_run(tmp_path, capsys, monkeypatch):
    # ...and the weight average's scores (--g-ema) from the resume that turns it on.
    images = image_folder(tmp_path / "images")
    run_dir = tmp_path / "run"
    base = TINY + ["--dataset-path", str(images), "--checkpoints-path", str(run_dir), "--eval-interval", "2"]
    clock = SlowEvaluations(monkeypatch)
    assert train.main(base + ["--max-steps", "3", "--epochs", "9"]) == 0
    # Resumed with the generator's weight average turned on: it starts from the checkpoint's
    # weights, and eval.csv gains its columns from then on.
    assert train.main(base + ["--max-steps", "6", "--epochs", "9", "--g-ema", "0.9"]) == 0
    assert "has no weight average" in capsys.readouterr().err
    rows = read_csv(run_dir / "eval.csv")
    assert [bool(r["mae_ema"]) for r in rows] == [False, False, True, True, True]
    assert all(float(r["mae_ema"]) > 0 and 0 <= float(r["accuracy_ema"]) <= 1 for r in rows[2:])
    # The colour scores of every evaluation, the average's from the resume on.
    assert all(float(r["colourfulness"]) >= 0 and 0 < float(r["palette"]) <= 1 for r in rows)
    assert [bool(r["colourfulness_ema"]) for r in rows] == [False, False, True, True, True]
    # Every 2 steps, each epoch's end (5 steps of 4 of the 22 images) and each run's last step.
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 5, 6]
    assert [float(r["epoch"]) for r in rows] == [0.4, 0.6, 0.8, 1.0, 1.2]
    assert clock.offset == 5000.0
    # Evaluations are off the training clock, which a resume continues: five evaluations of
    # 1000 s each, and not one of them counted.
    seconds = [float(r["seconds"]) for r in rows]
    assert 0 < seconds[0] and all(b > a for a, b in zip(seconds, seconds[1:])) and seconds[-1] < 1000
    log = {int(r["step"]): float(r["seconds"]) for r in read_csv(run_dir / "log.csv")}
    assert all(log[int(r["step"])] <= float(r["seconds"]) <= log.get(int(r["step"]) + 1, 1e9) for r in rows)
    assert max(log.values()) < 1000

    # A spent time budget ends the run after one step, with a last evaluation.
    capsys.readouterr()
    assert train.main(base + ["--max-hours", "1e-9", "--epochs", "9"]) == 0
    assert "1e-09 h budget spent" in capsys.readouterr().out
    assert int(read_csv(run_dir / "eval.csv")[-1]["step"]) == 7


def test_the_quality_curves_are_drawn_from_the_logs(tmp_path):
    def write(path, maes, colour=False):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", "epoch", "seconds", "accuracy", "mae"] + ["colourfulness", "palette"] * colour)
            for i, mae in enumerate(maes):
                writer.writerow([100 * (i + 1), i + 1, 600 * (i + 1), 0.1 + 0.02 * i, mae]
                                + [20 + i, 0.6 + 0.1 * i] * colour)

    write(tmp_path / "a.csv", [14, 12, 11])
    write(tmp_path / "b.csv", [16, 15, 9])
    baseline = {"mae": 12.4, "accuracy": 0.2463}
    assert figures.plot_quality_curves({"U-Net": tmp_path / "a.csv"}, tmp_path / "one.png", baseline)
    assert figures.plot_quality_curves({"U-Net": tmp_path / "a.csv", "GAN": tmp_path / "b.csv"},
                                       tmp_path / "two.png", baseline)
    one, two = (np.asarray(Image.open(tmp_path / f"{n}.png").convert("RGB")) for n in ("one", "two"))
    assert one.shape == two.shape and one.shape[1] > 600
    assert (one != two).any()  # the second run's curves are drawn
    # Logs with colour scores (eval.csv since 2026-12-02) add the colourfulness and palette rows.
    write(tmp_path / "c.csv", [16, 15, 9], colour=True)
    baseline.update(colourfulness_true=30.6, palette=0.273)
    assert figures.plot_quality_curves({"U-Net": tmp_path / "a.csv", "GAN": tmp_path / "c.csv"},
                                       tmp_path / "colour.png", baseline)
    colour = np.asarray(Image.open(tmp_path / "colour.png").convert("RGB"))
    assert colour.shape[1] == two.shape[1] and colour.shape[0] > 1.8 * two.shape[0]
    # The trade-off of MAE against colour: only from logs with colour scores.
    assert not figures.plot_colour_tradeoff({"U-Net": tmp_path / "a.csv"}, tmp_path / "no.png", baseline)
    assert not (tmp_path / "no.png").exists()
    assert figures.plot_colour_tradeoff({"U-Net": tmp_path / "a.csv", "GAN": tmp_path / "c.csv"},
                                        tmp_path / "tradeoff.png", baseline)
    assert np.asarray(Image.open(tmp_path / "tradeoff.png")).std() > 0
    (tmp_path / "empty.csv").write_text("step,epoch,seconds,accuracy,mae\n")
    assert not figures.plot_quality_curves({"GAN": tmp_path / "empty.csv"}, tmp_path / "none.png", baseline)
    assert not (tmp_path / "none.png").exists()


def test_an_old_eval_log_keeps_its_columns(tmp_path):
    from training_log import TrainingLog
    (tmp_path / "eval.csv").write_text("step,epoch,accuracy,mae\n1,1,0.1,15.0\n")
    log = TrainingLog(tmp_path)
    log.evaluation({"step": 2, "epoch": 2, "seconds": 9.0, "accuracy": 0.2, "mae": 14.0})
    assert (tmp_path / "eval.csv").read_text().splitlines() == ["step,epoch,accuracy,mae", "1,1,0.1,15.0",
                                                               "2,2,0.2,14.0"]
    # ...and gains the colour scores, which a resumed run of an older version adds, with nothing
    # for the rows before.
    log.evaluation({"step": 3, "epoch": 3, "seconds": 12.0, "accuracy": 0.3, "mae": 13.0,
                    "colourfulness": 21.5, "palette": 0.75})
    assert (tmp_path / "eval.csv").read_text().splitlines() == [
        "step,epoch,accuracy,mae,colourfulness,palette", "1,1,0.1,15.0,,", "2,2,0.2,14.0,,", "3,3,0.3,13.0,21.5,0.75"]


def test_rows_of_steps_lost_with_a_crash_are_forgotten_on_resume(tmp_path):
    from training_log import TrainingLog
    (tmp_path / "log.csv").write_text("step,epoch,seconds,g_l1\n10,1,5.0,0.2\n20,1,9.0,0.1\n30,1,14.0,0.1\n")
    (tmp_path / "eval.csv").write_text("step,epoch,seconds,accuracy,mae\n20,1.0,9.0,0.1,15.0\n")
    log = TrainingLog(tmp_path)
    assert log.forget_after(20) == 1  # the checkpoint was at step 20; step 30 was lost
    assert (tmp_path / "log.csv").read_text().splitlines() == ["step,epoch,seconds,g_l1", "10,1,5.0,0.2",
                                                               "20,1,9.0,0.1"]
    assert (tmp_path / "eval.csv").read_text().splitlines()[-1] == "20,1.0,9.0,0.1,15.0"
    assert log.forget_after(20) == 0 and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.slow
def test_after_a_crash_the_resumed_logs_hold_each_step_once(tmp_path, capsys):
    images = image_folder(tmp_path / "images")
    run_dir = tmp_path / "run"
    base = TINY + ["--dataset-path", str(images), "--checkpoints-path", str(run_dir), "--epochs", "9",
                   "--save-interval", "2", "--eval-interval", "1"]
    assert train.main(base + ["--max-steps", "3"]) == 0
    (run_dir / "step_00000003.h5").unlink()  # as if killed (-9) after step 3's logs, before its save
    assert train.main(base + ["--max-steps", "5"]) == 0
    assert "removed 2 log rows of steps after 2" in capsys.readouterr().err
    assert [int(r["step"]) for r in read_csv(run_dir / "log.csv")] == [1, 2, 3, 4, 5]
    assert [int(r["step"]) for r in read_csv(run_dir / "eval.csv")] == [1, 2, 3, 4, 5]


def test_the_fast_recipe_sets_its_defaults_and_explicit_options_win():
    from config import RECIPES
    from options import parse_train_options
    import test as test_script
    paper = parse_train_options(["--dataset", "cifar10"])
    fast = parse_train_options(["--dataset", "cifar10", "--recipe", "fast"])
    assert paper.recipe == "paper" and not paper.zero_head
    assert all(getattr(fast, k) == v for k, v in RECIPES["fast"].items()) and fast.zero_head
    assert not parse_train_options(["--dataset", "cifar10", "--recipe", "fast", "--no-zero-head"]).zero_head
    scores = dict.fromkeys(["mae", "accuracy", "psnr", "ssim", "auc", "colourfulness", "colourfulness_true", "palette"], 1.0)
    state = {"epoch": 1, "position": 0, "seconds": 60}
    assert test_script.row({**vars(fast), "model": "unet"}, None, scores, state)["Network"] == "U-Net (CNN), fast recipe"
    assert test_script.row({**vars(paper), "model": "unet"}, None, scores, state)["Network"] == "U-Net (CNN)"
    decay = parse_train_options(["--dataset", "cifar10", "--recipe", "fast", "--lr-decay-steps", "2000"])
    assert (test_script.row({**vars(decay), "model": "unet"}, None, scores, state)["Network"]
            == "U-Net (CNN), fast recipe, rate x0.1 per 2,000 steps")  # a schedule other than the paper's is named
    assert test_script.row(vars(paper), "no colour (a* = b* = 0)", scores)["Network"] == "no colour (a* = b* = 0)"
