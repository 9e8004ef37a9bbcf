"""A model's architecture: what fixes its variables. It is stored in every checkpoint (the "config"
attribute, models/checkpoint.py), read back here with the defaults of checkpoints older than its
fields, and compared here, the one place where a checkpoint meets a run: a resume (the whole
architecture), a warm start (the generator's part) and a restore.

The rest of a run's configuration, how it trains, is options.TrainingConfig.
"""
import dataclasses

from models.registry import DISCRIMINATORS, GENERATORS, MODELS

# Bounds checked before anything is built from a stored architecture: a crafted file must not make
# the loader allocate terabytes (Places365's U-Net is 8 layers of <= 512 filters).
MAX_LAYERS, MAX_FILTERS, MAX_IMAGE_SIZE = 16, 4096, 16384
# A generator alone, which does not train: export.py's generator.keras (its training model is in
# its export.json) or a stand-in for one (no colour, tests' rules).
STANDALONE = "generator"
# The fields that do not change the generator's variables (they are float32 under any precision).
NOT_THE_GENERATOR = ("model", "discriminator", "mixed_precision")
# Checkpoints written before a field existed: what they trained.
STORED_DEFAULTS = {"generator": "unet", "discriminator": "patchgan"}  # named since 2026-12


class InvalidArchitecture(ValueError):
    """A stored architecture that this code cannot build (malformed, out of bounds, unknown names)."""


class UnknownNetwork(InvalidArchitecture):
    """A stored architecture that names a network models/registry.py does not have (newer code's)."""


@dataclasses.dataclass(frozen=True)
class Architecture:
    """`encoder`: (filters, stride) per encoder layer (models/presets.py); `dropout_layers`: how many
    decoder layers have dropout; `generator` and `discriminator`: names in models/registry.py."""
    model: str
    encoder: tuple
    dropout_layers: int
    image_size: int
    mixed_precision: bool = False
    generator: str = "unet"
    discriminator: str = "patchgan"

    def __post_init__(self):
        if self.model not in MODELS + (STANDALONE,):
            raise ValueError(f"unknown model {self.model!r}; valid models: {', '.join(MODELS)}")
        object.__setattr__(self, "encoder", tuple(tuple(layer) for layer in self.encoder))
        object.__setattr__(self, "mixed_precision", bool(self.mixed_precision))

    @property
    def is_gan(self):
        return self.model == "gan"

    def to_json(self):
        """The JSON object a checkpoint stores (lists where this holds tuples)."""
        return {**dataclasses.asdict(self), "encoder": [list(layer) for layer in self.encoder]}

    @classmethod
    def from_json(cls, stored):
        """The architecture a checkpoint stored, validated before anything is allocated for it, with
        the defaults of checkpoints older than its fields (InvalidArchitecture)."""
        if not isinstance(stored, dict):
            raise InvalidArchitecture("not a JSON object")
        encoder = stored.get("encoder")
        if not (isinstance(encoder, list) and 1 <= len(encoder) <= MAX_LAYERS):
            raise InvalidArchitecture(f"the encoder must have 1 to {MAX_LAYERS} layers")
        for layer in encoder:
            if not (isinstance(layer, list) and len(layer) == 2 and all(type(v) is int for v in layer)
                    and 1 <= layer[0] <= MAX_FILTERS and layer[1] in (1, 2)):
                raise InvalidArchitecture(f"encoder layer {layer!r} is not [filters 1..{MAX_FILTERS}, stride 1 or 2]")
        dropout_layers, size = stored.get("dropout_layers"), stored.get("image_size")
        if not (type(dropout_layers) is int and 0 <= dropout_layers <= len(encoder)):
            raise InvalidArchitecture(f"dropout_layers {dropout_layers!r}")
        if not (type(size) is int and 1 <= size <= MAX_IMAGE_SIZE):
            raise InvalidArchitecture(f"image_size {size!r} is not 1..{MAX_IMAGE_SIZE}")
        if stored.get("model") not in MODELS or not isinstance(stored.get("mixed_precision"), bool):
            raise InvalidArchitecture("model or mixed_precision")
        stored = {**STORED_DEFAULTS, **stored}
        for key, registry in (("generator", GENERATORS), ("discriminator", DISCRIMINATORS)):
            if stored[key] not in registry:
                raise UnknownNetwork(f"needs the {key} {stored[key]!r}, which this code does not have "
                                     f"(models/registry.py: {', '.join(registry)})")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in stored.items() if k in known})

    def difference(self, other, ignore=()):
        """What differs from `other` ("" when nothing does), `self` as the checkpoint's side:
        "image_size is 64 in the checkpoint, 128 here"."""
        mine, theirs = self.to_json(), other.to_json()
        keys = [k for k in mine if k not in ignore and mine[k] != theirs[k]]
        return "; ".join(f"{k} is {mine[k]} in the checkpoint, {theirs[k]} here" for k in keys)

    def generator_difference(self, other):
        """What differs between the two generators' variables ("" when they are the same)."""
        return self.difference(other, ignore=NOT_THE_GENERATOR)
