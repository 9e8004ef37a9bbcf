"""The two implementations of the networks' layers, chosen by `--implementation`; the networks
themselves (models/generator.py, models/discriminator.py) are written once, over these blocks.

- "plain": Keras' own layers, one per operation, as the paper draws them;
- "lowmem" (the default): the memory-saving layers of models/lowmem/: each BatchNorm and its
  activation one layer, the skip connections pairs of tensors that the next layer convolves as if
  concatenated, the first two encoder convolutions recomputed in the backward pass, the colour
  head's share of the outermost skip computed where that skip is made. The same maths in far less
  memory and, in bfloat16, faster (docs/speed.md).

Both make the same variables with the same names in the same order, so a checkpoint loads into
either; tests/test_models.py and tests/test_memory.py check that they compute the same function
(outputs, gradients, BatchNorm statistics).
"""
import keras
from keras import layers

# Reference code: every convolution kernel from TF1's tf.variance_scaling_initializer defaults,
# VarianceScaling(1.0, fan_in, truncated normal) (LeCun-like); biases zero. "glorot" (Keras'
# default, which this project used before) is kept for the ablation of docs/time_to_quality.md.
INITIALIZERS = {
    "reference": lambda: keras.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal"),
    "glorot": lambda: keras.initializers.GlorotUniform(),
}


def kernel_initializer(name):
    """A new initializer instance per layer (one instance shared by layers would repeat values)."""
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; valid: {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]()


class PlainLayers:
    """Keras' own layers. `dtype`: a Keras dtype policy ("mixed_bfloat16", "mixed_float16") or
    None for float32; `sync_bn`: BatchNorm statistics over all replicas (no new variable);
    `initializer`: the kernels' (INITIALIZERS)."""

    def __init__(self, dtype=None, sync_bn=False, initializer="reference"):
        self.dtype, self.sync_bn, self.initializer = dtype, sync_bn, initializer

    def _conv(self, kind, x, name, filters, stride, dtype=None):
        return kind(filters, 4, stride, padding="same", name=name, dtype=dtype or self.dtype,
                    kernel_initializer=kernel_initializer(self.initializer))(x)

    def conv(self, x, name, filters, stride=1, dtype=None):
        """A 4x4 convolution, 'same' padding (the discriminator's last layer: dtype float32)."""
        return self._conv(layers.Conv2D, x, name, filters, stride, dtype)

    def conv_bn_act(self, x, name, filters, stride, negative_slope, recompute=False):
        """4x4 convolution - BatchNorm - (Leaky)ReLU. `recompute` is lowmem's (its first layers)."""
        x = self.conv(x, f"{name}_conv", filters, stride)
        return self.bn_act(x, f"{name}_bn", f"{name}_lrelu", negative_slope)

    def deconv_bn_act(self, x, name, filters):
        """4x4 transposed convolution, stride 2 - BatchNorm - ReLU."""
        x = self._conv(layers.Conv2DTranspose, x, f"{name}_deconv", filters, 2)
        return self.bn_act(x, f"{name}_bn", f"{name}_relu", 0.0)

    def bn_act(self, x, bn_name, act_name, negative_slope):
        """BatchNorm - ReLU (negative_slope 0) or LeakyReLU."""
        x = layers.BatchNormalization(synchronized=self.sync_bn, name=bn_name, dtype=self.dtype)(x)
        return self.leaky_relu(x, act_name, negative_slope)

    def leaky_relu(self, x, name, negative_slope):
        if not negative_slope:
            return layers.ReLU(name=name, dtype=self.dtype)(x)
        return layers.LeakyReLU(negative_slope=negative_slope, name=name, dtype=self.dtype)(x)

    def colour_head(self, filters, skip_channels, zero_head):
        """The 1x1 convolution with tanh that gives a*b*, float32 under mixed precision (tanh
        saturates badly in half precision); called on the last join."""
        return layers.Conv2D(filters, 1, activation="tanh", name="ab", dtype="float32",
                             kernel_initializer="zeros" if zero_head else kernel_initializer(self.initializer))

    def skip(self, x, head):
        """(x, the skip connection to keep): the plain U-Net keeps x itself."""
        return x, x

    def join(self, skip, x, name):
        """The U-Net's skip connection: [skip, x] along the channels."""
        return layers.Concatenate(name=name, dtype=self.dtype)([skip, x])


class LowMemoryLayers(PlainLayers):
    """The memory-saving layers (models/lowmem/), the same variables as PlainLayers'."""

    def __init__(self, dtype=None, sync_bn=False, initializer="reference"):
        super().__init__(dtype, sync_bn, initializer)
        from models.lowmem import convolutions, normalization, skip
        self.convolutions, self.normalization, self.skips = convolutions, normalization, skip

    def _conv(self, kind, x, name, filters, stride, dtype=None):
        kind = {layers.Conv2D: self.convolutions.Conv2D, layers.Conv2DTranspose: self.convolutions.Conv2DTranspose}[kind]
        return super()._conv(kind, x, name, filters, stride, dtype)

    def _norm(self, name, negative_slope):
        return self.normalization.BatchNormActivation(negative_slope, name=name, synchronized=self.sync_bn,
                                                      dtype=self.dtype)

    def conv_bn_act(self, x, name, filters, stride, negative_slope, recompute=False):
        if not recompute:
            return super().conv_bn_act(x, name, filters, stride, negative_slope)
        # The convolution's output is recomputed in the backward pass rather than kept: at 256x256
        # the first two layers' outputs are a third of a gigabyte per 16 images, and recomputing
        # them costs about 0.1 % of a step (one and 64 input channels).
        conv = self.convolutions.Conv2D(filters, 4, stride, padding="same", name=f"{name}_conv", dtype=self.dtype,
                                        kernel_initializer=kernel_initializer(self.initializer))
        norm = self._norm(f"{name}_bn", negative_slope)
        conv.build(x.shape)  # here, so that the variables keep their paths (enc0_conv/kernel)
        norm.build(conv.compute_output_shape(x.shape))
        return self.normalization.ConvBatchNormActivation(conv, norm, name=name, dtype=self.dtype)(x)

    def bn_act(self, x, bn_name, act_name, negative_slope):
        return self._norm(bn_name, negative_slope)(x)  # BatchNorm and its activation in one layer

    def leaky_relu(self, x, name, negative_slope):
        if not negative_slope:
            return super().leaky_relu(x, name, negative_slope)
        return self.normalization.LeakyReLU(negative_slope=negative_slope, name=name, dtype=self.dtype)(x)

    def colour_head(self, filters, skip_channels, zero_head):
        head = self.skips.ColourHead(filters, skip_channels=skip_channels, activation="tanh", dtype="float32",
                                     name="ab", kernel_initializer="zeros" if zero_head else
                                     kernel_initializer(self.initializer))
        head.build([(None, None, None, filters), (None, None, None, skip_channels)])
        return head

    def skip(self, x, head):
        # The head's share of the outermost skip connection, computed here (models/lowmem/skip.py).
        x, projected = self.skips.SkipProjection(head, name="ab_skip", dtype=self.dtype)(x)
        return x, projected

    def join(self, skip, x, name):
        return [skip, x]  # the next layer convolves the pair as if concatenated


IMPLEMENTATIONS = {"lowmem": LowMemoryLayers, "plain": PlainLayers}


def layer_set(implementation, dtype=None, sync_bn=False, initializer="reference"):
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {implementation!r}; valid: {', '.join(IMPLEMENTATIONS)}")
    return IMPLEMENTATIONS[implementation](dtype, sync_bn, initializer)
