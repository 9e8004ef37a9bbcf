import keras
import numpy as np
import pytest
import tensorflow as tf

from data import color
from options import TrainingConfig
from models import checkpoint as ckpt
from models.architecture import Architecture
from models.colorization import ColorizationModel
from inference.loading import load_for_inference
from models.discriminator import build_discriminator
from models.generator import build_generator
from models.presets import PRESETS, folder_preset
from tests.helpers import colouring_task, random_batch, tiny_model


@pytest.mark.parametrize("preset, size, params", [("cifar10", 32, 16.65e6), ("places365", 256, 42.0e6)])
def test_generator_presets_have_the_papers_size_and_shapes(preset, size, params):
    g = build_generator(**PRESETS[preset])
    assert abs(g.count_params() - params) / params < 0.01
    assert g(tf.zeros([2, size, size, 1])).shape == (2, size, size, 2)


def test_patchgan_gives_70x70_patch_logits():
    d = build_discriminator()
    assert abs(d.count_params() - 2.77e6) / 2.77e6 < 0.01
    assert d([tf.zeros([1, 32, 32, 1]), tf.zeros([1, 32, 32, 2])]).shape == (1, 4, 4, 1)
    assert d([tf.zeros([1, 256, 256, 1]), tf.zeros([1, 256, 256, 2])]).shape == (1, 32, 32, 1)


@pytest.mark.parametrize("size, paper, narrow", [(64, 29.25e6, 7.32e6), (128, 41.84e6, 10.46e6)])
def test_the_narrow_unet_is_the_papers_at_half_width(size, paper, narrow):
    from models import registry
    preset = folder_preset(size)
    built = {name: registry.builder(registry.GENERATORS, name, "plain")(**preset) for name in ("unet", "unet-narrow")}
    assert abs(built["unet"].count_params() - paper) / paper < 0.01
    assert abs(built["unet-narrow"].count_params() - narrow) / narrow < 0.01
    assert len(built["unet"].layers) == len(built["unet-narrow"].layers)
    assert built["unet-narrow"](tf.zeros([1, size, size, 1])).shape == (1, size, size, 2)


@pytest.mark.parametrize("size, downsamplings", [(32, 4), (64, 5), (224, 5), (128, 6), (256, 7), (512, 7)])
def test_folder_preset_depth_follows_the_image_size(size, downsamplings):
    encoder = folder_preset(size)["encoder"]
    assert sum(stride == 2 for _, stride in encoder) == downsamplings
    assert build_generator(**folder_preset(size))(tf.zeros([1, size, size, 1])).shape == (1, size, size, 2)


def test_one_gan_step_changes_both_networks_and_batchnorm_statistics():
    model = tiny_model("gan")
    g_before = [v.numpy().copy() for v in model.generator.variables]
    d_before = [v.numpy().copy() for v in model.discriminator.variables]
    losses = model.train_step(*random_batch())
    assert set(losses) == {"d_real", "d_fake", "g_gan", "g_l1"}
    assert all(np.isfinite(float(v)) for v in losses.values())
    for net, before in ((model.generator, g_before), (model.discriminator, d_before)):
        changed = {v.path for v, b in zip(net.variables, before) if not np.array_equal(v.numpy(), b)}
        assert any("kernel" in p for p in changed)
        assert any("moving_mean" in p for p in changed) and any("moving_variance" in p for p in changed)
    assert int(model.step.numpy()) == 1
    # One D step then two G steps per batch (the reference's schedule).
    assert int(model.d_optimizer.iterations.numpy()) == 1 and int(model.g_optimizer.iterations.numpy()) == 2


@pytest.mark.parametrize("g_steps", [1, 3])
def test_g_steps_sets_the_generator_steps_per_batch(g_steps):
    model = tiny_model(g_steps=g_steps)  # train.py --g-steps
    for _ in range(2):
        model.train_step(*random_batch())
    assert int(model.d_optimizer.iterations.numpy()) == 2
    assert int(model.g_optimizer.iterations.numpy()) == 2 * g_steps


def test_unet_baseline_trains_the_generator_alone():
    model = tiny_model("unet")
    assert model.discriminator is None
    assert set(model.train_step(*random_batch())) == {"g_l1"}


def test_dropout_runs_in_training_and_inference_is_deterministic():
    model = tiny_model("gan")
    L, _ = random_batch()
    train_a = model.generator(L, training=True).numpy()
    train_b = model.generator(L, training=True).numpy()
    assert not np.array_equal(train_a, train_b)
    assert np.array_equal(model.predict_ab(L).numpy(), model.predict_ab(L).numpy())
    # Inference uses BatchNorm's moving statistics: one image alone gives the same as in a batch.
    assert np.allclose(model.predict_ab(L[:1]).numpy(), model.predict_ab(L).numpy()[:1], atol=1e-5)


def test_learning_rate_decays_continuously_with_a_floor():
    model = tiny_model(lr=3e-4, lr_decay_rate=0.1, lr_decay_steps=1e4)
    assert float(model.learning_rate(0)) == pytest.approx(3e-4)
    assert float(model.learning_rate(5000)) == pytest.approx(3e-4 * 0.1 ** 0.5, rel=1e-5)
    assert float(model.learning_rate(10 ** 6)) == pytest.approx(1e-6)
    assert float(model.d_optimizer.learning_rate) == pytest.approx(3e-5)  # the reference's tenth...
    model = tiny_model(lr=3e-4, d_lr_factor=1.0)  # ...or train.py --d-lr-factor's
    assert float(model.d_optimizer.learning_rate) == pytest.approx(3e-4)


@pytest.mark.slow
@pytest.mark.parametrize("kind, mixed_precision", [("unet", False), ("gan", False), ("unet", True)],
                         ids=["unet", "gan", "unet-mixed-precision"])
def test_model_learns_a_tiny_colouring_task(kind, mixed_precision):
    tf.keras.utils.set_random_seed(0)
    images = colouring_task(64)
    L, ab = color.rgb_to_model_input(tf.constant(images))
    model = tiny_model(kind, batch=16, lr=2e-3, mixed_precision=mixed_precision)
    # 300 batches; 100 for the GAN, whose two G steps per batch get it there sooner (at 100 its
    # error was a fifth of this bound's, the U-Net's about two thirds).
    for step in range(100 if kind == "gan" else 300):
        i = (step * 16) % 64
        model.train_step(L[i:i + 16], ab[i:i + 16])
    test_L, test_ab = color.rgb_to_model_input(tf.constant(colouring_task(32, seed=1)))
    l1 = float(tf.reduce_mean(tf.abs(model.predict_ab(test_L) - test_ab)))
    no_colour = float(tf.reduce_mean(tf.abs(test_ab)))
    assert l1 < 0.4 * no_colour, (l1, no_colour)


def test_checkpoint_round_trips_bit_for_bit(tmp_path):
    model = tiny_model("gan")
    model.train_step(*random_batch())
    path = tmp_path / "step_00000001.h5"
    model.save(path, {"dataset": "folder"}, {"epoch": 0, "position": 4})
    restored, options, state = load_for_inference(tmp_path)  # a run folder resolves to its latest
    L, _ = random_batch(seed=3)
    assert np.array_equal(model.predict_ab(L).numpy(), restored.predict_ab(L).numpy())
    assert options == {"dataset": "folder"} and state == {**ckpt.STATE_DEFAULTS, "epoch": 0, "position": 4, "step": 1}
    # Optimizer moments and step come back too: the next step is identical.
    resumed = tiny_model("gan")
    resumed.restore(path)
    for a, b in zip(model.g_optimizer.variables, resumed.g_optimizer.variables):
        assert np.array_equal(a.numpy(), b.numpy())
    batch = random_batch(seed=4)
    tf.keras.utils.set_random_seed(1)
    a = model.train_step(*batch)
    tf.keras.utils.set_random_seed(1)
    b = resumed.train_step(*batch)
    assert float(a["g_l1"]) == pytest.approx(float(b["g_l1"]), rel=1e-5)


def test_bad_checkpoints_are_refused_with_a_clear_message_and_left_intact(tmp_path):
    model = tiny_model("gan")
    not_hdf5 = tmp_path / "notes.h5"
    not_hdf5.write_text("hello")
    with pytest.raises(ckpt.CheckpointError, match="not an HDF5 file"):
        model.restore(not_hdf5)
    assert not_hdf5.read_text() == "hello"
    import h5py
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["weights"] = np.zeros(3)
    with pytest.raises(ckpt.CheckpointError, match="not a checkpoint of this project"):
        model.restore(foreign)
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        model.restore(tmp_path / "missing.h5")
    other = tiny_model("unet")
    other.save(tmp_path / "unet.h5", {}, {"epoch": 0, "position": 0})
    with pytest.raises(ckpt.CheckpointError, match="another architecture: model is unet"):
        model.restore(tmp_path / "unet.h5")


def test_checkpoint_writes_are_atomic_and_pruned(tmp_path, monkeypatch):
    model = tiny_model("unet")
    for step in (1, 2, 3, 4):
        model.step.assign(step)
        model.save(tmp_path / ckpt.checkpoint_name(step), {}, {"epoch": 0, "position": 0})
        ckpt.prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000003.h5", "step_00000004.h5"]
    good = (tmp_path / "step_00000004.h5").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(ckpt.h5py.File, "create_group", crash)
    with pytest.raises(OSError):
        model.save(tmp_path / "step_00000004.h5", {}, {"epoch": 0, "position": 0})
    assert (tmp_path / "step_00000004.h5").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000003.h5", "step_00000004.h5"]


def test_mixed_precision_keeps_the_colour_head_and_losses_in_float32():
    model = tiny_model("gan", mixed_precision=True)
    assert model.generator.get_layer("enc2_conv").compute_dtype == "bfloat16"
    assert model.generator.output.dtype == "float32"
    losses = model.train_step(*random_batch())
    assert all(v.dtype == tf.float32 and np.isfinite(float(v)) for v in losses.values())
    assert model.predict_ab(random_batch()[0]).dtype == tf.float32


@pytest.mark.parametrize("trained_mixed", [False, True], ids=["float32-checkpoint", "bfloat16-checkpoint"])
def test_inference_precision_can_differ_from_the_training_precision(tmp_path, trained_mixed):
    model = tiny_model("gan", mixed_precision=trained_mixed)
    model.train_step(*random_batch())
    model.save(tmp_path / "step_00000001.h5", {}, {"epoch": 0, "position": 4})
    L, _ = random_batch(seed=3)
    as_trained, _, state = load_for_inference(tmp_path)
    assert state["step"] == 1
    assert np.array_equal(as_trained.predict_ab(L).numpy(), model.predict_ab(L).numpy())
    runs = {}
    for mixed in (False, True):
        other, _, _ = load_for_inference(tmp_path, mixed_precision=mixed)
        assert other.generator.get_layer("enc2_conv").compute_dtype == ("bfloat16" if mixed else "float32")
        runs[mixed] = other.predict_ab(L).numpy()
    assert runs[False].dtype == runs[True].dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa: the colours agree to about a percent of their range.
    difference = np.abs(runs[False] - runs[True])
    assert 0 < difference.mean() < 0.01 and difference.max() < 0.1, (difference.mean(), difference.max())


@pytest.mark.parametrize("policy", [None, "mixed_bfloat16"])
def test_the_plain_and_memory_saving_networks_have_the_same_variables_and_outputs(policy):
    from models import registry
    from tests.helpers import TINY_ENCODER
    keras.utils.set_random_seed(0)
    pairs = [((registry.GENERATORS, "unet"), (TINY_ENCODER, 1), {"dropout": 0.3, "zero_head": False}),
             ((registry.GENERATORS, "unet-narrow"), (TINY_ENCODER, 1), {"dropout": 0.3, "zero_head": False}),
             ((registry.DISCRIMINATORS, "patchgan"), (), {})]
    L = tf.random.uniform((2, 16, 16, 1), -1, 1, seed=2)
    ab = tf.random.uniform((2, 16, 16, 2), -0.3, 0.3, seed=3)
    for versions, args, kwargs in pairs:
        lowmem = registry.builder(*versions, "lowmem")(*args, dtype=policy, **kwargs)
        plain = registry.builder(*versions, "plain")(*args, dtype=policy, **kwargs)
        assert [(tuple(v.shape), v.dtype) for v in lowmem.variables] == [(tuple(v.shape), v.dtype) for v in plain.variables]
        for a, b in zip(lowmem.variables, plain.variables):
            b.assign(a)
        inputs = L if len(lowmem.inputs) == 1 else [L, ab]
        # training mode too where no dropout draws its masks (the discriminator): batch statistics
        for training in (False,) if args else (False, True):
            np.testing.assert_allclose(tf.cast(lowmem(inputs, training=training), tf.float32),
                                       tf.cast(plain(inputs, training=training), tf.float32),
                                       atol=2e-2 if policy else 1e-4)


def test_a_new_generator_is_one_registry_line_and_trains(monkeypatch, tmp_path):
    from keras import layers
    from models import registry
    from models.checkpoint import read_metadata

    def tiny_generator(encoder, dropout_layers, dtype=None, name="generator", **ignored):
        inputs = keras.Input((None, None, 1))
        x = layers.Conv2D(4, 3, padding="same", activation="relu", dtype=dtype)(inputs)
        return keras.Model(inputs, layers.Conv2D(2, 1, activation="tanh", dtype="float32")(x), name=name)

    monkeypatch.setitem(registry.GENERATORS, "tiny", tiny_generator)
    config = Architecture("gan", [(8, 1), (16, 2)], 1, 16, generator="tiny")
    model = ColorizationModel(config, TrainingConfig(batch_size=4))
    assert len(model.generator.layers) == 3
    before = [v.numpy().copy() for v in model.generator.trainable_variables]
    losses = model.train_step(*random_batch())
    assert all(np.isfinite(float(v)) for v in losses.values())
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(before, model.generator.trainable_variables))
    model.save(tmp_path / "step_00000001.h5", {}, {"epoch": 0, "position": 4})
    assert read_metadata(tmp_path / "step_00000001.h5")[0].generator == "tiny"


def test_a_checkpoint_of_one_implementation_resumes_in_the_other(tmp_path):
    config = Architecture("gan", [(8, 1), (16, 2), (16, 2)], 1, 16)
    lowmem = ColorizationModel(config, TrainingConfig(batch_size=4, implementation="lowmem"))
    lowmem.train_step(*random_batch())
    lowmem.save(tmp_path / "step_00000001.h5", {}, {"epoch": 0, "position": 4})
    plain = ColorizationModel(config, TrainingConfig(batch_size=4, implementation="plain"))
    plain.restore(tmp_path / "step_00000001.h5")
    L, _ = random_batch(seed=7)
    np.testing.assert_allclose(plain.predict_ab(L), lowmem.predict_ab(L), atol=1e-4)
    plain.train_step(*random_batch(seed=1))
    assert int(plain.step.numpy()) == 2


def test_a_registered_generator_runs_through_test_colorize_and_export(monkeypatch, tmp_path, capsys):
    """Networks by name everywhere: what the checkpoint names is built for scoring, photos and export."""
    import json
    from keras import layers
    import colorize
    import export
    import test as test_script
    from models import registry
    from tests.helpers import image_folder

    def tiny_generator(encoder, dropout_layers, dtype=None, name="generator", **ignored):
        inputs = keras.Input((None, None, 1), name="L")
        x = layers.Conv2D(6, 3, padding="same", dtype=dtype)(inputs)
        x = layers.BatchNormalization(dtype=dtype)(x)
        x = layers.ReLU(dtype=dtype)(x)
        return keras.Model(inputs, layers.Conv2D(2, 1, activation="tanh", dtype="float32")(x), name=name)

    monkeypatch.setitem(registry.GENERATORS, "tiny", tiny_generator)
    images = image_folder(tmp_path / "images")
    model = ColorizationModel(Architecture("unet", [(8, 1), (16, 2)], 1, 16, generator="tiny"), TrainingConfig(batch_size=4))
    model.train_step(*random_batch())
    (tmp_path / "run").mkdir()
    options = {"dataset": "folder", "dataset_path": str(images), "image_size": 16, "batch_size": 4,
               "model": "unet", "generator": "tiny"}  # as train.py stores them
    model.save(tmp_path / "run" / "step_00000001.h5", options, {"epoch": 0, "position": 4})
    assert test_script.main(["--checkpoint", str(tmp_path / "run"), "--output", str(tmp_path / "scores"),
                             "--bn-statistics", "moving", "--no-progress"]) == 0
    rows = json.loads((tmp_path / "scores" / "results.json").read_text())
    assert rows[-1]["Network"].endswith("tiny") and rows[-1]["MAE"] > 0
    assert colorize.main([str(images / "test"), "--checkpoint", str(tmp_path / "run"), "--output",
                          str(tmp_path / "colorized"), "--no-progress"]) == 0
    assert len(list((tmp_path / "colorized").rglob("*.png"))) == 6
    assert export.main(["--checkpoint", str(tmp_path / "run"), "--output", str(tmp_path / "exported"),
                        "--format", "keras"]) == 0
    exported = load_for_inference(tmp_path / "exported")[0].generator
    assert exported.count_params() == model.generator.count_params() and len(exported.layers) == 5
    capsys.readouterr()
    assert test_script.main(["--checkpoint", str(tmp_path / "run"), "--output", str(tmp_path / "b"),
                             "--bn-statistics", "batch", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "batch" in err[0] and "tiny" in err[0], err


def test_a_shared_forward_pass_trains_the_same_weights_with_one_generator_pass_less():
    # Without dropout the D step's fake colours are the same whether it makes them or takes them
    # from the first G step's forward pass: every weight after a step agrees; only BatchNorm's
    # moving statistics see one update less.
    from tests.helpers import random_batch
    trained = {}
    for shared in (False, True):
        keras.utils.set_random_seed(0)
        model = tiny_model("gan", dropout=0.0, shared_forward=shared)
        for seed in range(2):
            model.train_step(*random_batch(seed=seed))
        trained[shared] = model
    for network in ("generator", "discriminator"):
        pairs = zip(getattr(trained[False], network).variables, getattr(trained[True], network).variables)
        for a, b in pairs:
            if "moving" in a.path:
                continue
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.path)
    moving = [(a, b) for a, b in zip(trained[False].generator.variables, trained[True].generator.variables)
              if "moving_mean" in a.path]
    assert moving and not all(np.allclose(a.numpy(), b.numpy()) for a, b in moving)
    assert int(trained[True].g_optimizer.iterations.numpy()) == int(trained[False].g_optimizer.iterations.numpy()) == 4
