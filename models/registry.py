"""Networks by name. A checkpoint's config names its generator and discriminator; a network has
one or two implementations with the same variables (so a checkpoint loads into either):

- "plain": Keras' own layers (models/plain.py), the code to read and to change;
- "lowmem": the memory-saving layers (models/generator.py, models/discriminator.py: fused BatchNorm
  and activation, skips as pairs, recomputed first layers), the same maths in less memory.

To try another network: write its builder (same arguments as models/plain.py's; extra ones may be
ignored) in its own file and add one line below; `--generator NAME` trains it
(tests/test_models.py trains a tiny one for a step).
"""
from models import discriminator, generator, plain

GENERATORS = {
    "unet": {"plain": plain.plain_generator, "lowmem": generator.build_generator},
}
DISCRIMINATORS = {
    "patchgan": {"plain": plain.plain_discriminator, "lowmem": discriminator.build_discriminator},
}
IMPLEMENTATIONS = ("lowmem", "plain")
DEFAULT_IMPLEMENTATION = "lowmem"  # far less memory (tests/test_memory.py); bench.py times both


def builder(registry, name, implementation=DEFAULT_IMPLEMENTATION):
    kind = "generator" if registry is GENERATORS else "discriminator"
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(registry)}")
    versions = registry[name]
    return versions.get(implementation) or next(iter(versions.values()))  # a network may have one
