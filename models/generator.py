"""The U-Net generator of Nazeri et al. (docs/recipe.md, "Generator"): L in, a*b* out.

This is the network that trains: change it here, and `python train.py` trains the change, in
either implementation of its layers (models/layers.py: `--implementation lowmem`, the default, or
`plain`, Keras' own layers). Every layer uses 4x4 kernels and 'same' padding, so the network is
fully convolutional: built with unknown height and width, it takes any size that is a multiple of
2 ** (stride-2 encoder layers) (models/presets.py). For another network beside this one, copy it
and add one line in models/registry.py.
"""
import keras
from keras import layers

from models.layers import layer_set
from models.presets import narrow


def build_generator(encoder, dropout_layers, output_channels=2, dtype=None, sync_bn=False,
                    initializer="reference", dropout=0.5, zero_head=False, name="generator",
                    implementation="lowmem"):
    """U-Net, L (normalised to [-1, 1]) in, a*b* (/110) out.

    encoder: (filters, stride) per layer (models/presets.py); the decoder mirrors it without its
    last layer, and its first `dropout_layers` layers have dropout at rate `dropout`.
    dtype: a Keras dtype policy ("mixed_bfloat16", "mixed_float16") or None for float32.
    sync_bn: BatchNorm statistics over all replicas of a tf.distribute strategy (no new variable).
    initializer: the kernels' initializer (models/layers.py). zero_head: the colour head's kernel
    starts at zero, so that the untrained network predicts grey (docs/time_to_quality.md).
    implementation: the layers it is built from (models/layers.py); the same variables either way.
    """
    blocks = layer_set(implementation, dtype, sync_bn, initializer)
    head = blocks.colour_head(output_channels, encoder[0][0], zero_head)  # 1x1 conv, tanh: the last layer
    inputs = keras.Input((None, None, 1), name="L")                          # (H, W, 1)
    x, skips = inputs, []
    for i, (filters, stride) in enumerate(encoder):                           # conv 4x4 - BN - LeakyReLU(0.2)
        x = blocks.conv_bn_act(x, f"enc{i}", filters, stride, 0.2, recompute=i < 2)
        x, skip = blocks.skip(x, head) if i == 0 else (x, x)
        skips.append(skip)                                                    # (H / 2^k, W / 2^k, filters)
    decoder = [filters for filters, _ in encoder[:-1]][::-1]
    for i, (filters, skip) in enumerate(zip(decoder, skips[-2::-1])):          # deconv 4x4 /2 - BN - ReLU
        x = blocks.deconv_bn_act(x, f"dec{i}", filters)
        if i < dropout_layers:
            drop = layers.Dropout(0.5, name=f"dec{i}_dropout", dtype=dtype)
            # Made at 0.5 so that its seed variable exists at any rate (Keras makes none at 0):
            # the variables, and so the checkpoints, do not depend on the rate.
            drop.rate = dropout
            x = drop(x)
        x = blocks.join(skip, x, f"dec{i}_skip")                              # the U-Net skip: [skip, x]
    return keras.Model(inputs, head(x), name=name)                            # (H, W, 2)


def build_narrow_generator(encoder, dropout_layers, **kwargs):
    """The same U-Net at half the width of every layer (`--generator unet-narrow`): a quarter of
    the weights and FLOPs, for photographs on a CPU (docs/photos.md)."""
    return build_generator(narrow(encoder), dropout_layers, **kwargs)


def plain_generator_from(generator, architecture, dtype=None):
    """A copy of a generator of either implementation in Keras' own layers (export.py): the network
    the architecture names (models/registry.py), float32, or dtype ("float16") where given."""
    from models.registry import GENERATORS, builder  # the registry names this module's builders
    build = builder(GENERATORS, architecture.generator, "plain")
    plain = build(architecture.encoder, architecture.dropout_layers, dtype=dtype)
    copy_variables(generator, plain)
    return plain


def copy_variables(source, target):
    ours, theirs = source.variables, target.variables
    if [tuple(v.shape) for v in ours] != [tuple(v.shape) for v in theirs]:
        raise ValueError(f"{source.name}'s variables do not match {target.name}'s")
    for a, b in zip(ours, theirs):
        b.assign(keras.ops.cast(a, b.dtype))
