"""The U-Net generator of Nazeri et al. (REFERENCE.md, "Generator"): L in, a*b* out.

Every layer uses 4x4 kernels and 'same' padding, so the network is fully convolutional: it is
built with unknown height and width and takes any size that is a multiple of 2**(number of
stride-2 encoder layers).
"""
import keras
from keras import layers

from models.convolutions import Conv2D, Conv2DTranspose

# (filters, stride) of each encoder layer and the number of decoder layers with dropout 0.5.
# The decoder mirrors the encoder without its last layer.  Source: the reference code's
# CIFAR-10 and Places365 networks.
PRESETS = {
    "cifar10": {"encoder": [(64, 1), (128, 2), (256, 2), (512, 2), (512, 2)], "dropout_layers": 2},
    "places365": {"encoder": [(64, 1), (64, 2), (128, 2), (256, 2), (512, 2), (512, 2), (512, 2),
                              (512, 2)], "dropout_layers": 3},
}


def downsampling_factor(encoder):
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


def valid_sizes_near(size, factor):
    """The two closest sizes (at least `factor`) the U-Net accepts, for error messages."""
    lower = max(factor, size // factor * factor)
    return sorted({lower, lower + factor} if lower != size else {size})


def build_generator(encoder, dropout_layers, output_channels=2, dtype=None, sync_bn=False,
                    name="generator"):
    """U-Net: conv-BN-LeakyReLU(0.2) encoder, transposed-conv-BN-ReLU(-dropout) decoder, skips.

    `dtype` is a Keras dtype policy name ("mixed_bfloat16", "mixed_float16") or None for float32.
    `sync_bn` computes BatchNorm statistics over all replicas of a tf.distribute strategy (it
    changes no variable).
    """
    inputs = keras.Input((None, None, 1), name="L")
    x = inputs
    skips = []
    for i, (filters, stride) in enumerate(encoder):
        x = Conv2D(filters, 4, stride, padding="same", name=f"enc{i}_conv", dtype=dtype)(x)
        x = layers.BatchNormalization(name=f"enc{i}_bn", synchronized=sync_bn, dtype=dtype)(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"enc{i}_lrelu", dtype=dtype)(x)
        skips.append(x)
    decoder = [filters for filters, _ in encoder[:-1]][::-1]
    for i, (filters, skip) in enumerate(zip(decoder, skips[-2::-1])):
        x = Conv2DTranspose(filters, 4, 2, padding="same", name=f"dec{i}_deconv", dtype=dtype)(x)
        x = layers.BatchNormalization(name=f"dec{i}_bn", synchronized=sync_bn, dtype=dtype)(x)
        x = layers.ReLU(name=f"dec{i}_relu", dtype=dtype)(x)
        if i < dropout_layers:
            x = layers.Dropout(0.5, name=f"dec{i}_dropout", dtype=dtype)(x)
        x = layers.Concatenate(name=f"dec{i}_skip", dtype=dtype)([skip, x])
    # The colour head stays float32 under mixed precision: tanh saturates badly in half precision.
    outputs = layers.Conv2D(output_channels, 1, activation="tanh", dtype="float32", name="ab")(x)
    return keras.Model(inputs, outputs, name=name)
