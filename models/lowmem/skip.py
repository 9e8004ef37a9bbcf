"""The U-Net's outermost skip connection, arranged so that its gradient is not held all along.

The colour head is a 1x1 convolution of the pair [first encoder layer's output (64 channels, full
resolution), last decoder layer's output]. Its backward pass, the first of the step, would compute
the 64-channel gradient for the skip connection at once, and that gradient would wait in memory
(a quarter of a gigabyte for 16 images at 256x256) until the backward pass reaches the first
encoder layer at the very end. Instead, the skip connection's share of the head, a 2-channel
projection, is computed right after the first encoder layer (`SkipProjection`), and its
64-channel gradient is made only when the encoder's own gradient arrives there. The colour
head (`ColourHead`) adds that share to the convolution of the decoder's output. The variables
are the head's alone, with its usual shape, so checkpoints are unchanged; the results equal those
of the plain 1x1 convolution up to float rounding.
"""
import keras
import tensorflow as tf



def _project(y, kernel):
    """y (..., c) times kernel (c, out), in float32."""
    return tf.tensordot(tf.cast(y, tf.float32), kernel, axes=[[3], [0]])


@tf.custom_gradient
def _tee_and_project(y, kernel):
    """(y, y @ kernel); the gradient through the projection waits for y's other gradient."""
    def gradient(dy, dprojection):
        with tf.control_dependencies([dy]):  # not before the backward pass reaches this layer
            dy_projection = tf.tensordot(dprojection, kernel, axes=[[3], [1]])
            dkernel = tf.tensordot(tf.cast(y, tf.float32), dprojection, axes=[[0, 1, 2], [0, 1, 2]])
        return dy + tf.cast(dy_projection, dy.dtype), dkernel
    return (tf.identity(y), _project(y, kernel)), gradient


class ColourHead(keras.layers.Conv2D):
    """1x1 convolution + activation of [skip, x], where the skip's share comes precomputed by a
    SkipProjection. Its kernel is (1, 1, skip channels + x channels, filters), skip rows first,
    as keras.layers.Conv2D's for the concatenated pair."""

    def __init__(self, filters, skip_channels, **kwargs):
        super().__init__(filters, 1, **kwargs)
        self.skip_channels = skip_channels

    def get_config(self):
        return {**super().get_config(), "skip_channels": self.skip_channels}

    def skip_kernel(self):
        return tf.cast(self.kernel[0, 0, :self.skip_channels], tf.float32)

    def build(self, input_shape):
        projected, x = input_shape
        super().build(tuple(x[:-1]) + (self.skip_channels + x[-1],))
        self.input_spec = None  # takes the pair

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape[0], (list, tuple)):  # the pair
            input_shape = input_shape[1]
        return tuple(input_shape[:-1]) + (self.filters,)

    def call(self, inputs):
        projected, x = inputs
        kernel = tf.cast(self.kernel[0, 0, self.skip_channels:], tf.float32)
        outputs = projected + _project(x, kernel) + tf.cast(self.bias, tf.float32)
        return outputs if self.activation is None else self.activation(outputs)


class SkipProjection(keras.layers.Layer):
    """y -> [y, y's share of the colour head]; the head's kernel stays the head's variable."""

    def __init__(self, head, **kwargs):
        super().__init__(**kwargs)
        self._skip_kernel = head.skip_kernel  # a method, so that Keras does not track the head here
        self._filters = head.filters

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape), tuple(input_shape[:-1]) + (self._filters,)]

    def call(self, inputs, training=None):
        if training:
            return list(_tee_and_project(inputs, self._skip_kernel()))
        return [inputs, _project(inputs, self._skip_kernel())]
