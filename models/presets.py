"""The U-Net's shape for each dataset, and the sizes it accepts. No TensorFlow here: options.py
checks a command line against these before anything heavy is imported (`train.py --help`)."""

# (filters, stride) of each encoder layer, and how many decoder layers have dropout. The decoder
# mirrors the encoder without its last layer. Source: the reference code's CIFAR-10 and Places365
# networks (docs/recipe.md, "Generator").
PRESETS = {
    "cifar10": {"encoder": [(64, 1), (128, 2), (256, 2), (512, 2), (512, 2)], "dropout_layers": 2},
    "places365": {"encoder": [(64, 1), (64, 2), (128, 2), (256, 2), (512, 2), (512, 2), (512, 2),
                              (512, 2)], "dropout_layers": 3},
}


def downsampling_factor(encoder):
    """The U-Net takes sizes that are multiples of this: 2 ** (stride-2 encoder layers)."""
    return 2 ** sum(1 for _, stride in encoder if stride == 2)


def folder_preset(image_size):
    """Deepest U-Net (at most Places365's) whose bottleneck is still at least 2x2 pixels."""
    depth = 0
    while depth < 7 and image_size % 2 ** (depth + 1) == 0 and image_size // 2 ** (depth + 1) >= 2:
        depth += 1
    if depth >= 7:
        return PRESETS["places365"]
    # Below Places365's depth, grow CIFAR-10's encoder with more 512-filter layers.
    downs = [128, 256, 512, 512, 512, 512][:max(depth, 4)]
    return {"encoder": [(64, 1)] + [(f, 2) for f in downs], "dropout_layers": 2 if depth <= 4 else 3}


def narrow(encoder, factor=2):
    """The encoder at 1/factor of its width (the narrower U-Net of models/registry.py): about
    1/factor**2 of the weights and FLOPs."""
    return [(max(filters // factor, 8), stride) for filters, stride in encoder]


def valid_sizes_near(size, factor):
    """The two closest sizes (at least `factor`) the U-Net accepts, for error messages."""
    lower = max(factor, size // factor * factor)
    return sorted({lower, lower + factor} if lower != size else {size})
