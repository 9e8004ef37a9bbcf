"""The U-Net's and PatchGAN's 4x4, stride-2 convolutions, with gradients that are fast on CPUs.

TensorFlow computes a transposed convolution (the generator's decoder, and the input gradient of
every strided convolution) as Conv2DBackpropInput, and a kernel gradient as Conv2DBackpropFilter.
On the CPU both are pathologically slow on small images with many channels, the deep end of a
U-Net: for 128 CIFAR-10 images, the input gradient of the 512 -> 512 channel layer at 4x4 pixels
took 2.5 s, 35 times the same arithmetic done as forward convolutions (README, "Speed").

So on small images they are computed differently, with the same result up to float rounding:
- A transposed convolution (inputs up to 16x16 pixels), per axis: output pixel 2i takes input
  pixels i-1 and i through kernel taps 3 and 1, and output pixel 2i+1 takes pixels i and i+1
  through taps 2 and 0. Each of the four output phases (even/odd row x even/odd column) is
  therefore an ordinary 2x2 convolution of the input padded by one pixel on one side; the phases
  are interleaved into the doubled image.
- A kernel gradient (images up to 8x8 pixels) is one matrix product of the input's 4x4 patches
  with the output gradient.
- The input gradient of a stride-1 convolution (images up to 8x8 pixels) is a forward convolution
  of the output gradient with the flipped kernel (the PatchGAN's last layers on CIFAR-10).
On larger images TensorFlow's own kernels are as fast or faster, and are used.

`Conv2D` and `Conv2DTranspose` are drop-in replacements for the Keras layers: same arguments, same
variables (checkpoints are unchanged), same outputs; the fast paths apply to 4x4 kernels, strides
1 and 2 (transposed: 2), 'same' padding and channels-last data, and the layers fall back to Keras otherwise.
"""
import keras
import tensorflow as tf

# Kernel taps (along one axis) feeding output phase 0 (even pixels) and 1 (odd pixels), in the
# order of the input window they multiply: phase 0 reads pixels (i-1, i), phase 1 (i, i+1).
_TAPS = ((3, 1), (2, 0))
PHASES_UP_TO = 16 * 16   # transposed convolutions of inputs up to this many pixels use phases
PATCHES_UP_TO = 8 * 8    # kernel gradients on images up to this many pixels use a patch product
_STRIDE_2 = [1, 2, 2, 1]


def _when_small(image, pixels, small, large):
    """small() if `image` has at most `pixels` pixels, else large(); decided when tracing if known."""
    height, width = image.shape[1], image.shape[2]
    if height is not None and width is not None:
        return small() if height * width <= pixels else large()
    shape = tf.shape(image)
    return tf.cond(shape[1] * shape[2] <= pixels, small, large)


def _phase_kernel(kernel, row_phase, col_phase):
    """The 2x2 (in, out) kernel of one output phase, from a (4, 4, out, in) transposed-conv kernel."""
    k = tf.transpose(kernel, (0, 1, 3, 2))
    return tf.stack([tf.stack([k[ty, tx] for tx in _TAPS[col_phase]]) for ty in _TAPS[row_phase]])


def _transposed_by_phases(x, kernel):
    shape = tf.shape(x)
    batch, height, width = shape[0], shape[1], shape[2]
    rows = []
    for py in (0, 1):
        # Phase (py, px) reads the input padded by one pixel before (phase 0) or after (phase 1):
        # padding given to the convolution itself, so no padded copy or slice of x is made.
        phases = [tf.nn.conv2d(x, _phase_kernel(kernel, py, px), 1, [[0, 0], [1 - py, py], [1 - px, px], [0, 0]])
                  for px in (0, 1)]
        rows.append(tf.stack(phases, axis=3))          # batch, h, w, column phase, channels
    y = tf.stack(rows, axis=2)                         # batch, h, row phase, w, column phase, channels
    return tf.reshape(y, tf.stack([batch, 2 * height, 2 * width, tf.shape(kernel)[2]]))


def _transposed(x, kernel, output_shape):
    """conv2d_transpose(x, kernel (4, 4, out, in), stride 2, 'SAME') of `output_shape`.

    `output_shape` is (batch, 2h or 2h - 1, 2w or 2w - 1, out): the input gradient of a strided
    convolution of an odd-sized image is the doubled image cropped by one pixel.
    """
    def native():
        return tf.nn.conv2d_transpose(x, kernel, output_shape, 2, "SAME")

    def phases():
        return _transposed_by_phases(x, kernel)[:, :output_shape[1], :output_shape[2]]
    return _when_small(x, PHASES_UP_TO, phases, native)


def _kernel_gradient(inputs, out_backprop, kernel_shape):
    """Gradient of a 4x4, stride-2, 'SAME' convolution's kernel, from its input and output gradient."""
    def native():
        return tf.raw_ops.Conv2DBackpropFilter(input=inputs, filter_sizes=kernel_shape, out_backprop=out_backprop,
                                               strides=_STRIDE_2, padding="SAME")

    def patches():
        # 'SAME' pads one pixel before; padding two after makes the VALID patches line up with it.
        padded = tf.pad(inputs, [[0, 0], [1, 2], [1, 2], [0, 0]])
        p = tf.image.extract_patches(padded, [1, 4, 4, 1], _STRIDE_2, [1, 1, 1, 1], "VALID")
        product = tf.matmul(tf.reshape(p, tf.stack([-1, 16 * tf.shape(inputs)[3]])),
                            tf.reshape(out_backprop, tf.stack([-1, tf.shape(out_backprop)[3]])), transpose_a=True)
        return tf.reshape(product, kernel_shape)
    return _when_small(inputs, PATCHES_UP_TO, patches, native)


@tf.custom_gradient
def conv_4x4_s2(x, kernel):
    """tf.nn.conv2d(x, kernel (4, 4, in, out), strides 2, 'SAME'), with fast gradients."""
    y = tf.nn.conv2d(x, kernel, 2, "SAME")

    def gradient(dy):
        return _transposed(dy, kernel, tf.shape(x)), _kernel_gradient(x, dy, tf.shape(kernel))
    return y, gradient


@tf.custom_gradient
def conv_4x4_s1(x, kernel):
    """tf.nn.conv2d(x, kernel (4, 4, in, out), strides 1, 'SAME'), with a fast input gradient.

    'SAME' pads one pixel before and two after, so the input gradient is the output gradient, padded
    two before and one after, convolved with the kernel flipped in space and in/out swapped.
    """
    y = tf.nn.conv2d(x, kernel, 1, "SAME")

    def gradient(dy):
        def by_convolution():
            flipped = tf.transpose(tf.reverse(kernel, [0, 1]), (0, 1, 3, 2))
            return tf.nn.conv2d(tf.pad(dy, [[0, 0], [2, 1], [2, 1], [0, 0]]), flipped, 1, "VALID")

        def native():
            return tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=kernel, out_backprop=dy,
                                                  strides=[1, 1, 1, 1], padding="SAME")
        dkernel = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel), out_backprop=dy,
                                                  strides=[1, 1, 1, 1], padding="SAME")
        return _when_small(dy, PATCHES_UP_TO, by_convolution, native), dkernel
    return y, gradient


@tf.custom_gradient
def transposed_conv_4x4_s2(x, kernel):
    """tf.nn.conv2d_transpose(x, kernel (4, 4, out, in), twice the size, strides 2, 'SAME'), fast."""
    shape = tf.shape(x)
    y = _transposed(x, kernel, tf.stack([shape[0], 2 * shape[1], 2 * shape[2], tf.shape(kernel)[2]]))

    def gradient(dy):
        return tf.nn.conv2d(dy, kernel, 2, "SAME"), _kernel_gradient(dy, x, tf.shape(kernel))
    return y, gradient


class _Fast4x4:
    """Mixin: compute 4x4, 'same', channels-last layers with `operations[stride]` on TensorFlow.

    The layer also takes a list of tensors in place of their concatenation along the channels (the
    U-Net's skip connections): it convolves each with its slice of the kernel and adds the results,
    so the concatenated tensor is never made, nor kept for the backward pass.
    """
    operations = {}
    kernel_input_axis = 2  # (height, width, in, out)

    def _fast(self):
        return (tuple(self.kernel_size) == (4, 4) and self.strides[0] == self.strides[1] in self.operations
                and self.padding == "same" and self.data_format == "channels_last" and tuple(self.dilation_rate) == (1, 1)
                and getattr(self, "output_padding", None) is None and keras.backend.backend() == "tensorflow")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_spec = None  # until built: a list of parts is welcome (build sets Keras' spec for one)

    @staticmethod
    def _joined(input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            channels = [shape[-1] for shape in input_shape]
            return tuple(input_shape[0][:-1]) + (sum(channels),), channels
        return tuple(input_shape), None

    def build(self, input_shape):
        shape, self._part_channels = self._joined(input_shape)
        super().build(shape)
        if self._part_channels is not None:
            self.input_spec = None  # a list of parts, which Keras' single-input spec would refuse

    def compute_output_shape(self, input_shape):
        return super().compute_output_shape(self._joined(input_shape)[0])

    def call(self, inputs):
        parts = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        return self.convolve(parts, self.kernel, self.bias if self.use_bias else None)

    def convolve(self, parts, kernel, bias):
        """The layer's output for a list of input parts, with the given kernel and bias tensors."""
        kernel = tf.cast(kernel, parts[0].dtype)
        slices = tf.split(kernel, [int(p.shape[-1]) for p in parts], axis=self.kernel_input_axis)
        outputs = None
        for part, part_kernel in zip(parts, slices):
            if self._fast():
                y = self.operations[self.strides[0]](part, part_kernel)
            elif self.kernel_input_axis == 2:
                y = keras.ops.conv(part, part_kernel, self.strides, self.padding, self.data_format, self.dilation_rate)
            else:
                y = keras.ops.conv_transpose(part, part_kernel, self.strides, self.padding, self.output_padding,
                                             self.data_format, self.dilation_rate)
            outputs = y if outputs is None else outputs + y
        if bias is not None:
            outputs = outputs + tf.cast(bias, outputs.dtype)
        return self.activation(outputs) if self.activation is not None else outputs


class Conv2D(_Fast4x4, keras.layers.Conv2D):
    """keras.layers.Conv2D with fast gradients for 4x4, stride-1 or -2, 'same' layers."""
    operations = {1: conv_4x4_s1, 2: conv_4x4_s2}


class Conv2DTranspose(_Fast4x4, keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose, fast for 4x4, stride-2, 'same' layers."""
    operations = {2: transposed_conv_4x4_s2}
    kernel_input_axis = 3  # (height, width, out, in)
