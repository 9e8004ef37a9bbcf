"""Adam whose update is one kernel per variable: the same rule and the same variables as
keras.optimizers.Adam (checkpoints load in either), in one pass over the weights instead of seven.

Keras' Adam updates each variable with separate element-wise operations (m, v, the square root, the
division, three assignments), each a pass over memory; for the photo U-Net's 10 million weights that
is about 24 ms a step on 2 CPU cores, 7 % of a bfloat16 step (docs/speed.md). TensorFlow's
ResourceApplyAdam computes the same formula in one fused kernel:

    m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
    w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

Under a tf.distribute strategy, with amsgrad, or on another Keras backend it is Keras' own update.
"""
import keras
import tensorflow as tf


class Adam(keras.optimizers.Adam):
    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        if (self.amsgrad or keras.backend.backend() != "tensorflow"
                or isinstance(m.value, tf.distribute.DistributedValues)):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.value.handle, v=v.value.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step), beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype), beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype), use_locking=False)
