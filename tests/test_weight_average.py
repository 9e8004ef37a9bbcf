"""train.py --g-ema: an exponential moving average of the generator's weights, kept beside them,
saved in every checkpoint and used for inference (test.py, colorize.py, serve.py, export.py)."""
import json

import h5py
import keras
import numpy as np
import pytest

import options
import test as test_script
from models.checkpoint import EMA_GROUP
from inference.loading import ema_view, load_for_inference
from tests.helpers import image_folder, random_batch, tiny_model

def trained(kind, g_ema, steps, L=None, ab=None):
    """A tiny model with a weight average, after `steps` training steps on one batch."""
    keras.utils.set_random_seed(0)
    model = tiny_model(kind, g_ema=g_ema)
    for _ in range(steps):
        model.train_step(*((L, ab) if L is not None else random_batch()))
    return model


def floats(variables):
    return [v.numpy().copy() for v in variables if np.issubdtype(v.numpy().dtype, np.floating)]


def test_the_average_follows_its_formula_after_every_step():
    keras.utils.set_random_seed(0)
    model = tiny_model("gan", g_ema=0.5)  # after both G steps of each batch
    L, ab = random_batch()
    history = [floats(model.generator.variables)]
    assert all(np.array_equal(a, w) for a, w in zip(floats(model.generator_ema.variables), history[0]))
    average = history[0]
    for n in range(3):
        model.train_step(L, ab)
        history.append(floats(model.generator.variables))
        decay = min(0.5, (1 + n) / (10 + n))  # 0.1, 0.18, 0.25: warmed up, below the cap of 0.5
        assert float(model.weight_average.decay_at(n)) == pytest.approx(decay)
        average = [decay * a + (1 - decay) * w for a, w in zip(average, history[-1])]
        got = floats(model.generator_ema.variables)
        for a, want in zip(got, average):
            np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-7)
    assert int(model.weight_average.updates.numpy()) == 3
    assert float(model.weight_average.decay_at(1000)) == 0.5  # the cap, once warmed up
    # The average is neither the first nor the last weights, and it includes BatchNorm's statistics.
    paths = [v.path for v in model.generator.variables if np.issubdtype(v.numpy().dtype, np.floating)]
    moving = [i for i, p in enumerate(paths) if p.endswith("moving_mean")]
    assert moving and all(not np.allclose(got[i], history[-1][i]) for i in moving)
    assert not all(np.allclose(a, w) for a, w in zip(got, history[0]))


def test_without_the_option_nothing_changes():
    keras.utils.set_random_seed(0)
    plain = tiny_model("gan")
    keras.utils.set_random_seed(0)
    averaged = tiny_model("gan", g_ema=0.999)
    assert plain.generator_ema is None and "generator_ema" not in plain._variable_groups()
    # Built last: the networks start from the same weights with or without an average.
    for net in ("generator", "discriminator"):
        for a, b in zip(getattr(plain, net).variables, getattr(averaged, net).variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_average_round_trips_through_a_checkpoint_and_a_resume_continues_it(tmp_path):
    L, ab = random_batch()
    model = trained("gan", 0.9, 2, L, ab)
    model.save(tmp_path / "a.h5", {}, {"epoch": 0, "position": 0})
    with h5py.File(tmp_path / "a.h5") as f:
        assert EMA_GROUP in f and json.loads(f.attrs["state"])["ema_updates"] == 2
    again = tiny_model("gan", g_ema=0.9)
    again.restore(tmp_path / "a.h5")
    for a, b in zip(model.generator_ema.variables, again.generator_ema.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # bit for bit
    assert int(again.weight_average.updates.numpy()) == 2
    model.train_step(L, ab)
    again.train_step(L, ab)
    for a, b in zip(model.generator_ema.variables, again.generator_ema.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_turning_the_average_on_when_resuming_starts_it_from_the_weights(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    model = tiny_model("unet")
    model.train_step(*random_batch())
    model.save(tmp_path / "plain.h5", {}, {"epoch": 0, "position": 0})
    averaged = tiny_model("unet", g_ema=0.99)
    averaged.restore(tmp_path / "plain.h5")
    assert "has no weight average" in capsys.readouterr().err
    assert int(averaged.weight_average.updates.numpy()) == 0
    for a, w in zip(averaged.generator_ema.variables, model.generator.variables):
        np.testing.assert_array_equal(a.numpy(), w.numpy())
    # And off again: the average in a checkpoint is ignored by a run without --g-ema.
    averaged.save(tmp_path / "averaged.h5", {}, {"epoch": 0, "position": 0})
    tiny_model("unet").restore(tmp_path / "averaged.h5")


def test_inference_reads_the_average_unless_told_otherwise(tmp_path):
    L, ab = random_batch()
    model = trained("gan", 0.9, 3, L, ab)
    model.save(tmp_path / "step_00000003.h5", {}, {"epoch": 0, "position": 0})
    want_average, want_raw = ema_view(model).predict_ab(L).numpy(), model.predict_ab(L).numpy()
    assert np.abs(want_average - want_raw).max() > 1e-4  # two different generators
    averaged, _, _ = load_for_inference(tmp_path)
    raw, _, _ = load_for_inference(tmp_path, weights="raw")
    assert (averaged.weights_used, raw.weights_used) == ("ema", "raw")
    np.testing.assert_allclose(averaged.predict_ab(L).numpy(), want_average, atol=1e-6)
    np.testing.assert_allclose(raw.predict_ab(L).numpy(), want_raw, atol=1e-6)
    # A checkpoint without an average: its trained weights, whatever is asked.
    tiny_model("gan").save(tmp_path / "plain" / "step_00000001.h5", {}, {"epoch": 0, "position": 0})
    assert load_for_inference(tmp_path / "plain")[0].weights_used == "raw"


@pytest.mark.parametrize("value", ["1", "-0.1", "nan"])
def test_a_bad_decay_is_one_line(value, capsys):
    with pytest.raises(SystemExit) as exit:
        options.parse_train_options(["--g-ema", value])
    assert exit.value.code == 2
    assert "--g-ema must be in [0, 1)" in capsys.readouterr().err


def test_test_py_gives_a_row_for_each_generator_of_each_checkpoint(tmp_path):
    # (train.py writing the average's columns into eval.csv, and a resume that turns it on:
    # tests/test_time_to_quality.py.)
    images = image_folder(tmp_path / "images")
    options = {"dataset": "folder", "dataset_path": str(images), "image_size": 16, "batch_size": 4,
               "model": "unet"}
    model = trained("unet", 0.9, 3)
    model.save(tmp_path / "run" / "step_00000003.h5", options, {"epoch": 0, "position": 12})
    older = tmp_path / "older" / "step_00000000.h5"  # untrained
    tiny_model("unet").save(older, options, {"epoch": 0, "position": 4})
    out = tmp_path / "results"
    assert test_script.main(["--checkpoint", str(tmp_path / "run"), "--checkpoint", str(older), "--output",
                             str(out), "--weights", "both", "--no-progress"]) == 0
    table = json.loads((out / "results.json").read_text())
    # The older checkpoint, without an average, has one row: its trained weights.
    assert [(r["Network"], r.get("Step")) for r in table] == [
        ("no colour (a* = b* = 0)", None), ("U-Net (CNN), weight average", 3), ("U-Net (CNN)", 3),
        ("U-Net (CNN)", 0)]
    assert table[1]["MAE"] != table[2]["MAE"]


@pytest.mark.slow
def test_the_average_is_kept_on_every_replica_of_a_mirrored_strategy():
    from tests.test_distribute import python
    result = python("""
        import json
        import keras, numpy as np
        from training import distribute
        from options import TrainingConfig
        from models.architecture import Architecture
        from models.colorization import ColorizationModel
        from tests.helpers import TINY_ENCODER, random_batch

        strategy = distribute.make_strategy("mirrored")
        keras.utils.set_random_seed(0)
        model = ColorizationModel(Architecture("gan", TINY_ENCODER, 0, 16),
                                  TrainingConfig(batch_size=8, sync_bn=True, g_ema=0.5), strategy)
        floats = lambda vs: [v.numpy() for v in vs if np.issubdtype(v.numpy().dtype, np.floating)]
        before = floats(model.generator.variables)
        L, ab = random_batch(8)
        dataset = strategy.experimental_distribute_dataset(
            __import__("tensorflow").data.Dataset.from_tensors((L, ab)))
        model.train_step(*next(iter(dataset)))
        after = floats(model.generator.variables)
        want = [0.1 * b + 0.9 * a for b, a in zip(before, after)]  # decay min(0.5, 1/10)
        averages = [v for v in model.generator_ema.variables if np.issubdtype(v.numpy().dtype, np.floating)]
        error = max(float(np.abs(r.numpy() - w).max()) for v, w in zip(averages, want)
                    for r in strategy.experimental_local_results(v.value))
        copies = {len(strategy.experimental_local_results(v.value)) for v in averages}
        moved = max(float(np.abs(a - b).max()) for a, b in zip(after, before))
        print(json.dumps({"replicas": strategy.num_replicas_in_sync, "copies": sorted(copies),
                          "error": error, "moved": moved}))
    """)
    assert result["replicas"] == 2 and result["copies"] == [2]
    assert result["moved"] > 1e-4 and result["error"] < 1e-6


def test_export_writes_the_average_and_says_so(tmp_path):
    import export
    L, ab = random_batch()
    model = trained("unet", 0.9, 3, L, ab)
    model.save(tmp_path / "run" / "step_00000003.h5", {"dataset": "folder", "image_size": 16},
               {"epoch": 0, "position": 12})
    for weights, want in (("ema", ema_view(model).predict_ab(L)), ("raw", model.predict_ab(L))):
        out = tmp_path / weights
        assert export.main(["--checkpoint", str(tmp_path / "run"), "--output", str(out), "--format", "keras",
                            "--weights", weights]) == 0
        assert json.loads((out / "export.json").read_text())["weights"] == weights
        exported, _, _ = load_for_inference(out)
        assert exported.weights_used == weights
        np.testing.assert_allclose(exported.predict_ab(L).numpy(), want.numpy(), atol=1e-5)
