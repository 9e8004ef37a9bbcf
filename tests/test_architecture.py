"""models/architecture.py: what a checkpoint stores of its networks, read back with the defaults of
older checkpoints, and the one comparison of a checkpoint's architecture with a run's."""
import dataclasses
import json

import pytest

from models.architecture import Architecture, InvalidArchitecture, UnknownNetwork
from options import ARCHITECTURE_OPTIONS, TrainingConfig, stored_options

TINY = [(8, 1), (16, 2)]


def test_it_round_trips_through_the_json_a_checkpoint_stores():
    architecture = Architecture("gan", TINY, 1, 16, True, "unet-narrow")
    stored = json.loads(json.dumps(architecture.to_json()))
    assert stored["encoder"] == [[8, 1], [16, 2]]
    assert Architecture.from_json(stored) == architecture
    with pytest.raises(dataclasses.FrozenInstanceError):
        architecture.image_size = 32


def test_a_checkpoint_older_than_the_network_names_trained_the_unet_and_the_patchgan():
    old = {"model": "gan", "encoder": [[8, 1], [16, 2]], "dropout_layers": 1, "image_size": 16,
           "mixed_precision": False}
    architecture = Architecture.from_json(old)
    assert (architecture.generator, architecture.discriminator) == ("unet", "patchgan")


@pytest.mark.parametrize("change, message", [
    ({"encoder": [[10 ** 9, 2]]}, "encoder layer [1000000000, 2] is not [filters 1..4096"),
    ({"encoder": []}, "the encoder must have 1 to 16 layers"),
    ({"image_size": 10 ** 6}, "image_size 1000000 is not 1..16384"),
    ({"dropout_layers": 5}, "dropout_layers 5"),
    ({"model": "vae"}, "model or mixed_precision"),
])
def test_a_stored_architecture_out_of_bounds_is_refused_before_anything_is_built(change, message):
    stored = {**Architecture("gan", TINY, 1, 16).to_json(), **change}
    with pytest.raises(InvalidArchitecture, match=message.replace("[", r"\[")):
        Architecture.from_json(stored)


def test_a_network_this_code_does_not_have_is_named():
    stored = {**Architecture("gan", TINY, 1, 16).to_json(), "generator": "transformer"}
    with pytest.raises(UnknownNetwork, match="needs the generator 'transformer'.*unet, unet-narrow"):
        Architecture.from_json(stored)


def test_the_difference_names_each_field_that_differs_and_the_generators_ignore_the_rest():
    saved = Architecture("unet", TINY, 1, 16)
    assert saved.difference(saved) == ""
    wanted = Architecture("gan", TINY, 1, 32, True)
    assert saved.difference(wanted) == ("model is unet in the checkpoint, gan here; image_size is 16 in the "
                                        "checkpoint, 32 here; mixed_precision is False in the checkpoint, True here")
    assert saved.generator_difference(wanted) == "image_size is 16 in the checkpoint, 32 here"
    assert saved.generator_difference(Architecture("gan", TINY, 1, 16, True)) == ""


def test_a_training_configuration_names_its_architecture_and_every_architecture_option_is_in_it():
    config = TrainingConfig(dataset="folder", model="unet", recipe="photo", image_size=64).resolved()
    architecture = config.architecture()
    assert (architecture.model, architecture.generator, architecture.image_size) == ("unet", "unet-narrow", 64)
    derived = {"encoder", "dropout_layers"}  # from the dataset's preset at the image size
    assert set(ARCHITECTURE_OPTIONS) == {f.name for f in dataclasses.fields(Architecture)} - derived


def test_stored_options_fill_what_an_old_checkpoint_predates_from_its_recipe():
    full = stored_options({"dataset": "folder", "recipe": "photo", "model": "unet", "lr": 1e-3})
    assert full["lr"] == 1e-3 and full["generator"] == "unet-narrow" and full["g_ema"] == 0.999
    assert full["implementation"] == TrainingConfig().implementation
    assert stored_options({"dataset": "cifar10", "train_images": 5})["train_images"] == 5  # kept as stored
