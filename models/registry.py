"""Models and networks by name. No TensorFlow here (options.py reads the names for `--help`);
a network's module is imported when it is built.

A checkpoint's config names its generator and discriminator. A network has one or two
implementations with the same variables in the same order, so a checkpoint loads into either:

- "plain": Keras' own layers (models/generator.py, models/discriminator.py), the code to read and
  to change;
- "lowmem": the memory-saving layers (models/lowmem/: BatchNorm fused with its activation, skips
  as pairs, recomputed first layers), the same maths in far less memory and, in bfloat16, faster
  (docs/speed.md).

To try another network: write its builder (arguments as models/generator.py's build_generator;
extra ones may be ignored) in its own file and add one line below; `--generator NAME` trains it
(tests/test_models.py trains a tiny one for a step).
"""
import importlib

MODELS = ("gan", "unet")  # gan: the paper's cGAN; unet: the same generator trained with L1 alone

GENERATORS = {
    "unet": {"plain": "models.generator:build_generator", "lowmem": "models.lowmem.generator:build_generator"},
    # The paper's U-Net at half the width of every layer: the photo model (docs/photos.md).
    "unet-narrow": {"plain": "models.generator:build_narrow_generator",
                    "lowmem": "models.lowmem.generator:build_narrow_generator"},
}
DISCRIMINATORS = {
    "patchgan": {"plain": "models.discriminator:build_discriminator",
                 "lowmem": "models.lowmem.discriminator:build_discriminator"},
}
IMPLEMENTATIONS = ("lowmem", "plain")
DEFAULT_IMPLEMENTATION = "lowmem"  # far less memory (tests/test_memory.py); tools/bench.py times both


def builder(registry, name, implementation=DEFAULT_IMPLEMENTATION):
    """The builder function of network `name` in `implementation` (or its only one)."""
    kind = "generator" if registry is GENERATORS else "discriminator"
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(registry)}")
    versions = registry[name]
    found = versions.get(implementation) or next(iter(versions.values()))  # a network may have one
    if isinstance(found, str):  # "module:function"
        module, function = found.split(":")
        found = getattr(importlib.import_module(module), function)
    return found
