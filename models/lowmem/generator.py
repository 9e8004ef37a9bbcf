"""The U-Net of models/generator.py, built from memory-saving layers: the same variables in the
same order and the same function (tests/test_memory.py), in far less memory. Read
models/generator.py for the network itself.
"""
import keras
from keras import layers

from models.generator import kernel_initializer
from models.lowmem.convolutions import Conv2D, Conv2DTranspose
from models.lowmem.normalization import BatchNormActivation, ConvBatchNormActivation
from models.lowmem.skip import ColourHead, SkipProjection
from models.presets import narrow


def build_generator(encoder, dropout_layers, output_channels=2, dtype=None, sync_bn=False,
                    initializer="reference", dropout=0.5, zero_head=False, name="generator"):
    """U-Net: conv-BN-LeakyReLU(0.2) encoder, transposed-conv-BN-ReLU(-dropout) decoder, skips.

    Each BN and its activation are one layer, and each skip connection is a pair of tensors that
    the next layer convolves as if concatenated: both only save memory (normalization.py,
    convolutions.py); the variables are those of the plain Keras layers.

    `dtype` is a Keras dtype policy name ("mixed_bfloat16", "mixed_float16") or None for float32.
    `sync_bn` computes BatchNorm statistics over all replicas of a tf.distribute strategy (it
    changes no variable).  `initializer` names the kernels' initializer (INITIALIZERS); `dropout` is
    the rate of the decoder's dropout layers (the reference's 0.5; 0 keeps the layers, inactive).
    `zero_head` starts the colour head's kernel at zero, so that the untrained network predicts
    grey (a*b* = 0, the no-colour baseline) instead of random colours (docs/time_to_quality.md).
    """
    inputs = keras.Input((None, None, 1), name="L")
    # The colour head stays float32 under mixed precision: tanh saturates badly in half precision.
    head = ColourHead(output_channels, skip_channels=encoder[0][0], activation="tanh", dtype="float32", name="ab",
                      kernel_initializer="zeros" if zero_head else kernel_initializer(initializer))
    head.build([(None, None, None, output_channels), (None, None, None, encoder[0][0])])
    x = inputs
    skips = []
    for i, (filters, stride) in enumerate(encoder):
        conv = Conv2D(filters, 4, stride, padding="same", name=f"enc{i}_conv", dtype=dtype,
                      kernel_initializer=kernel_initializer(initializer))
        norm = BatchNormActivation(0.2, name=f"enc{i}_bn", synchronized=sync_bn, dtype=dtype)  # LeakyReLU(0.2)
        if i < 2:
            # The first two layers' convolution outputs are recomputed in the backward pass rather
            # than kept: at 256x256 they are a third of a gigabyte per 16 images, and recomputing
            # them costs about 0.1 % of a step (one and 64 input channels).
            conv.build(x.shape)  # here, so that the variables keep their paths (enc0_conv/kernel)
            norm.build(conv.compute_output_shape(x.shape))
            x = ConvBatchNormActivation(conv, norm, name=f"enc{i}", dtype=dtype)(x)
        else:
            x = norm(conv(x))
        if i == 0:  # the head's share of the first skip connection (skip.py)
            x, projected = SkipProjection(head, name="ab_skip", dtype=dtype)(x)
            skips.append(projected)
        else:
            skips.append(x)
    decoder = [filters for filters, _ in encoder[:-1]][::-1]
    for i, (filters, skip) in enumerate(zip(decoder, skips[-2::-1])):
        x = Conv2DTranspose(filters, 4, 2, padding="same", name=f"dec{i}_deconv", dtype=dtype,
                            kernel_initializer=kernel_initializer(initializer))(x)
        x = BatchNormActivation(0.0, name=f"dec{i}_bn", synchronized=sync_bn, dtype=dtype)(x)  # ReLU
        if i < dropout_layers:
            layer = layers.Dropout(0.5, name=f"dec{i}_dropout", dtype=dtype)
            # Made at 0.5 so that its seed variable exists at any rate (Keras makes none at 0):
            # the variables, and so the checkpoints, do not depend on the rate.
            layer.rate = dropout
            x = layer(x)
        x = [skip, x]  # the skip connection: the next layer convolves the pair as if concatenated
    outputs = head(x)
    return keras.Model(inputs, outputs, name=name)


def build_narrow_generator(encoder, dropout_layers, **kwargs):
    """models/generator.py's build_narrow_generator in these layers."""
    return build_generator(narrow(encoder), dropout_layers, **kwargs)
