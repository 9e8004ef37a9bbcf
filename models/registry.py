"""Models and networks by name. No TensorFlow here (options.py reads the names for `--help`);
a network's module is imported when it is built.

A checkpoint's config names its generator and discriminator. Each network is written once and
built from either implementation of its layers (models/layers.py: "lowmem", the memory-saving
layers, or "plain", Keras' own), with the same variables in the same order, so a checkpoint loads
into either.

To try another network: write its builder (arguments as models/generator.py's build_generator,
`implementation` among them; extra ones may be ignored) in its own file and add one line below;
`--generator NAME` trains it (tests/test_models.py trains a tiny one for a step).
"""
import functools
import importlib

MODELS = ("gan", "unet")  # gan: the paper's cGAN; unet: the same generator trained with L1 alone

GENERATORS = {
    "unet": "models.generator:build_generator",
    # The paper's U-Net at half the width of every layer: the photo model (docs/photos.md).
    "unet-narrow": "models.generator:build_narrow_generator",
}
DISCRIMINATORS = {
    "patchgan": "models.discriminator:build_discriminator",
}
IMPLEMENTATIONS = ("lowmem", "plain")  # models/layers.py
DEFAULT_IMPLEMENTATION = "lowmem"  # far less memory (tests/test_memory.py); tools/bench.py times both


def builder(registry, name, implementation=DEFAULT_IMPLEMENTATION):
    """The builder function of network `name`, building it from `implementation`'s layers."""
    kind = "generator" if registry is GENERATORS else "discriminator"
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(registry)}")
    found = registry[name]
    if isinstance(found, str):  # "module:function"
        module, function = found.split(":")
        found = getattr(importlib.import_module(module), function)
    return functools.partial(found, implementation=implementation)
