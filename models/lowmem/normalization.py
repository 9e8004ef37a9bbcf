"""BatchNormalization followed by a (leaky) ReLU, as one layer that keeps a third of the memory.

Keras' BatchNormalization and activation layers each leave a full-size tensor for the backward
pass: the normalisation keeps its input, the activation its input or output, and under mixed
precision Keras also keeps a float32 copy of every 16-bit input to compute the statistics. For the
Places365 U-Net (batch 16, 256x256) these copies are gigabytes (README, "Speed").
`BatchNormActivation` keeps only its input, in its own dtype, and its output, which the next layer
keeps anyway:

    xhat = (x - mean) / sqrt(var + eps),   z = gamma * xhat + beta,   y = act(z)
    dz = dy * act'(z)   (from y: y > 0 exactly where z > 0)
    dbeta = sum(dz),   dgamma = sum(dz * xhat),   dx = gamma / sqrt(var + eps) / N * (N * dz - dbeta - xhat * dgamma)

The forward pass is one fused normalisation kernel and one activation kernel; the backward pass is
TensorFlow's fused batch-norm gradient. The sums run over batch, height and width (N values per
channel); under a tf.distribute strategy with `synchronized=True` the statistics and the two sums
in dx are those of all replicas, as in Keras' synchronized BatchNormalization. The variables,
their names, the moving-average update and the inference path are those of
keras.layers.BatchNormalization, so checkpoints are unchanged (tests/test_memory.py compares both).

`ConvBatchNormActivation` goes one step further for a convolution whose output is cheap to
recompute: that output is not kept at all but recomputed when the backward pass reaches it.
"""
import keras
import tensorflow as tf


def _replicas():
    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def _all_replicas(values, synchronized):
    """Sums `values` over the replicas of a synchronized layer (identity otherwise)."""
    if not synchronized or _replicas() == 1:
        return values
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values)


def fused_gradient():
    """Whether TensorFlow's fused batch-norm gradient takes the batch variance as computed here.

    On CPUs it does; cuDNN's kernel takes the inverse standard deviation saved by its own forward
    pass instead, so on GPUs the gradient is written out (GPUs have the memory to spare).
    """
    return not tf.config.list_physical_devices("GPU")


class BatchNormActivation(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization, then LeakyReLU(negative_slope) (0: ReLU), channels last."""

    def __init__(self, negative_slope=0.0, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = negative_slope
        # Inference with each batch's own statistics, the reference code's evaluation protocol
        # (its BatchNorm always ran in training mode); the moving statistics are left untouched.
        self.inference_batch_statistics = False

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}

    def _normalize_and_activate_forward(self, x, gamma, beta, mean, variance):
        """act(gamma * (x - mean) / sqrt(variance + eps) + beta) in x's dtype: one fused kernel for
        the normalisation and one for the activation, so no full-size float32 temporaries."""
        z = tf.raw_ops.FusedBatchNormV3(x=x, scale=gamma, offset=beta, mean=mean, variance=variance,
                                        epsilon=self.epsilon, data_format="NHWC", is_training=False)[0]
        return self._activate(z)

    def _activate(self, z):
        return tf.nn.leaky_relu(z, self.negative_slope) if self.negative_slope else tf.nn.relu(z)

    def call(self, inputs, training=None, mask=None, recompute=None):
        """recompute: None, or a function that recomputes `inputs` in the backward pass, which
        then does not keep them."""
        if mask is not None or self.renorm or self.axis not in (-1, len(inputs.shape) - 1) or not self.scale or not self.center:
            raise ValueError("BatchNormActivation supports channels-last inputs without masks or renorm")
        inputs = tf.cast(inputs, self.compute_dtype)
        gamma, beta = tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
        if not (training and self.trainable):
            if self.inference_batch_statistics:
                return self._batch_normalize_and_activate(inputs, gamma, beta)[0]
            mean, variance = tf.cast(self.moving_mean, tf.float32), tf.cast(self.moving_variance, tf.float32)
            return self._normalize_and_activate_forward(inputs, gamma, beta, mean, variance)
        if self.synchronized and _replicas() > 1:
            statistics = self._statistics(inputs)
        else:  # computed by the fused kernel that normalises, in one pass over the input
            statistics = None
        y, mean, variance = self._normalize_and_activate(inputs, gamma, beta, statistics, recompute)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return y

    def _statistics(self, x):
        """Per-channel mean and variance (float32, no gradient) and the number of values behind them."""
        x = tf.stop_gradient(tf.cast(x, tf.float32))
        axes = list(range(len(x.shape) - 1))
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        if self.synchronized:  # Keras' formula for synchronized statistics: E[x^2] - E[x]^2
            total, squares, count = _all_replicas(
                [tf.reduce_sum(x, axes), tf.reduce_sum(tf.square(x), axes), count], True)
            mean = total / count
            return mean, tf.maximum(squares / count - tf.square(mean), 0.0), count
        mean, variance = tf.nn.moments(x, axes)
        return mean, variance, count

    def _batch_normalize_and_activate(self, x, gamma, beta):
        """act(batch-normalised x) and the batch's float32 mean and (biased) variance, all from one
        fused kernel: no float32 copy of a 16-bit input, no separate passes for the statistics."""
        z, mean, unbiased = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=tf.zeros([0]), variance=tf.zeros([0]), epsilon=self.epsilon,
            data_format="NHWC", is_training=True)[:3]
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        # The kernel's batch variance carries Bessel's correction; Keras' statistics do not.
        variance = unbiased * ((count - 1.0) / count)
        return self._activate(z), tf.stop_gradient(mean), tf.stop_gradient(variance), count

    def _normalize_and_activate(self, x, gamma, beta, statistics, recompute):
        """(y, mean, variance) of a training step; `statistics` (mean, variance, count), or None to
        have the normalising kernel compute them."""
        epsilon, slope = self.epsilon, self.negative_slope
        synchronized = statistics is not None
        axes = list(range(len(x.shape) - 1))

        @tf.custom_gradient
        def forward(x, gamma, beta):
            if statistics is None:
                y, mean, variance, count = self._batch_normalize_and_activate(x, gamma, beta)
            else:
                mean, variance, count = statistics
                y = self._normalize_and_activate_forward(x, gamma, beta, mean, variance)

            def gradient(dy, *_):  # the statistics' own gradients: none (they only update the averages)
                x_kept = x
                if recompute is not None:
                    # Not before the backward pass reaches this layer: a graph runs every op as
                    # soon as its inputs exist, so without this the recomputation would run early.
                    with tf.control_dependencies([dy]):
                        x_kept = tf.cast(recompute(), x.dtype)
                # The activation's gradient from its output (y > 0 exactly where z > 0): y is kept
                # anyway, as the next layer's input.
                dz = tf.raw_ops.LeakyReluGrad(gradients=dy, features=y, alpha=slope)
                if not synchronized and fused_gradient():  # one kernel, no full-size temporaries
                    dx, dgamma, dbeta = tf.raw_ops.FusedBatchNormGradV3(
                        y_backprop=dz, x=x_kept, scale=gamma, reserve_space_1=mean, reserve_space_2=variance,
                        reserve_space_3=tf.zeros([0]), epsilon=epsilon, data_format="NHWC", is_training=True)[:3]
                    return dx, dgamma, dbeta
                # Written out (on GPUs, or with statistics over all replicas: then the sums in dx
                # are all-reduced too).
                inv = tf.math.rsqrt(variance + epsilon)
                xhat = (tf.cast(x_kept, tf.float32) - mean) * inv
                dz = tf.cast(dz, tf.float32)
                dbeta, dgamma = tf.reduce_sum(dz, axes), tf.reduce_sum(dz * xhat, axes)
                total_dbeta, total_dgamma = _all_replicas([dbeta, dgamma], True)
                dx = (gamma * inv / count) * (count * dz - total_dbeta - xhat * total_dgamma)
                return tf.cast(dx, x.dtype), dgamma, dbeta
            return (y, mean, variance), gradient
        return forward(x, gamma, beta)



BN_STATISTICS = ("moving", "batch")


def set_inference_statistics(model, statistics):
    """Which statistics the BatchNorm layers of `model` use at inference: "moving" (the moving
    averages, Keras' rule) or "batch" (each batch's own, the reference code's protocol). Call it
    before the model's inference function is first traced."""
    if statistics not in BN_STATISTICS:
        raise ValueError(f"unknown BatchNorm statistics {statistics!r}; valid: {', '.join(BN_STATISTICS)}")
    layers = list(model._flatten_layers(include_self=False))
    if statistics == "batch" and any(isinstance(layer, keras.layers.BatchNormalization)
                                     and not isinstance(layer, BatchNormActivation) for layer in layers):
        # Keras' own layer has its moving statistics only at inference (training=True would update them).
        raise ValueError("its Keras BatchNormalization layers have no batch-statistics inference; "
                         "use --bn-statistics moving")
    for layer in layers:
        if isinstance(layer, BatchNormActivation):
            layer.inference_batch_statistics = statistics == "batch"


class ConvBatchNormActivation(keras.layers.Layer):
    """A convolution layer, then a BatchNormActivation whose backward pass recomputes the
    convolution's output instead of keeping it: for the U-Net's first layer, where that output is
    one of the largest tensors of the step and costs little to recompute (one input channel).
    The two layers keep their own variables and names."""

    def __init__(self, conv, norm, **kwargs):
        super().__init__(**kwargs)
        self.conv, self.norm = conv, norm

    def build(self, input_shape):
        # Built from here, their variable paths would carry this layer's name as a prefix:
        # the caller builds them first (build_generator), and this is the fallback.
        if not self.conv.built:
            self.conv.build(input_shape)
        if not self.norm.built:
            self.norm.build(self.conv.compute_output_shape(input_shape))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        if not training:
            return self.norm(x, training=training)
        parts = [tf.cast(p, self.conv.compute_dtype) for p in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
        # The variables as this forward pass read them (the optimizer changes them afterwards).
        kernel = tf.identity(self.conv.kernel)
        bias = tf.identity(self.conv.bias) if self.conv.use_bias else None
        return self.norm(x, training=training, recompute=lambda: self.conv.convolve(parts, kernel, bias))


class LeakyReLU(keras.layers.LeakyReLU):
    """keras.layers.LeakyReLU whose gradient is computed from its output (y > 0 exactly where
    x > 0), so the backward pass keeps only the output, which the next layer keeps anyway."""

    def call(self, inputs):
        slope = self.negative_slope

        @tf.custom_gradient
        def forward(x):
            y = tf.nn.leaky_relu(x, slope)

            def gradient(dy):
                return tf.raw_ops.LeakyReluGrad(gradients=dy, features=y, alpha=slope)
            return y, gradient
        return forward(inputs)
