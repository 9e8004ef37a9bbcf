"""An exponential moving average of a network's weights (train.py --g-ema), kept in a second
network of the same architecture, which inference can use instead of the trained weights."""
import tensorflow as tf


class WeightAverage:
    """average <- d * average + (1 - d) * weights after each training step, for every
    floating-point variable of `network` (BatchNorm's moving statistics included), with the decay
    warmed up as d = min(decay, (1 + n) / (10 + n)) at the n-th update. Make it in the strategy's
    scope (its counter is a variable, saved in checkpoints as `ema_updates`)."""

    def __init__(self, network, average, decay):
        self.network, self.average, self.decay = network, average, decay
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="ema_updates")
        self.reset()

    def decay_at(self, updates):
        """The decay at the n-th update: early in a run (n small) the average spans about the last
        n / 9 steps, not the weights it started from."""
        n = tf.cast(updates, tf.float32)
        return tf.minimum(tf.constant(self.decay, tf.float32), (1.0 + n) / (10.0 + n))

    def update(self):
        # average - (1 - d) (average - weights): one subtraction and one fused update per
        # variable, the fewest passes over the weights TensorFlow offers for it.
        rate = 1.0 - self.decay_at(self.updates)
        for average, variable in self._pairs():
            if average.dtype == "float32" and not isinstance(average.value, tf.distribute.DistributedValues):
                tf.raw_ops.ResourceApplyGradientDescent(var=average.value.handle, alpha=rate,
                                                        delta=average - variable, use_locking=False)
            else:
                average.assign_sub(tf.cast(rate, average.dtype) * (average - variable))
        self.updates.assign_add(1)

    def reset(self):
        """The average starts as the network's current weights (a new run, --init-generator, or
        --g-ema turned on when resuming)."""
        for average, variable in zip(self.average.variables, self.network.variables):
            average.assign(variable)
        self.updates.assign(0)

    def _pairs(self):
        return [(a, v) for a, v in zip(self.average.variables, self.network.variables)
                if tf.as_dtype(v.dtype).is_floating]
