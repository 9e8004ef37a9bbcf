"""The colorization model: owns the generator, the discriminator, their optimizers, the training
step (losses from models/losses.py, the weight average from models/weight_average.py) and
checkpoint I/O. Loading a trained generator for inference: inference/loading.py.

`model="gan"` is the paper's conditional GAN; `model="unet"` is its CNN baseline, the same
generator trained with the L1 term alone.  All numbers come from docs/recipe.md ("Losses and
schedule").
"""
import sys
from pathlib import Path

import keras
import tensorflow as tf

from models import checkpoint as ckpt
from models import losses
from models.adam import Adam
from models.checkpoint import EMA_GROUP
from models.registry import DISCRIMINATORS, GENERATORS, MODELS, builder
from models.weight_average import WeightAverage

MIN_LEARNING_RATE = 1e-6  # reference code: the decayed rate is floored here


class ColorizationModel:
    """`architecture`: what fixes the variables (models/architecture.py); `training`: the
    rest of the run's configuration (options.TrainingConfig: its fields and `resolved()`). The
    strategy, sync_bn and the implementation are runtime choices: the same variables either way."""

    def __init__(self, architecture, training, strategy=None):
        if architecture.model not in MODELS:
            raise ValueError(f"a {architecture.model} architecture does not train")
        self.architecture = arch = architecture
        self.training = training = training.resolved()
        self.strategy = strategy or tf.distribute.get_strategy()
        self.is_gan = arch.is_gan
        self.real_label = 0.9 if training.label_smoothing else 1.0  # one-sided label smoothing
        g_ema = training.g_ema
        if not (isinstance(training.g_steps, int) and training.g_steps >= 1):
            raise ValueError(f"g_steps must be a positive integer, not {training.g_steps!r}")
        self.weights_used = "raw"  # load_for_inference may read the weight average instead
        self.traces = 0  # how often the training step was traced (one per input shape)
        sync_bn, initializer, dropout = bool(training.sync_bn), training.init, training.dropout
        policy = mixed_precision_policy() if arch.mixed_precision else None
        with self.strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            # The networks by name (models/registry.py).
            build_generator = builder(GENERATORS, arch.generator, training.implementation)
            self.generator = build_generator(arch.encoder, arch.dropout_layers,
                                             dtype=policy, sync_bn=sync_bn, initializer=initializer,
                                             dropout=dropout, zero_head=training.zero_head)
            self.g_optimizer = self._adam(1.0, training.beta1, policy)
            build_discriminator = builder(DISCRIMINATORS, arch.discriminator, training.implementation)
            self.discriminator = build_discriminator(dtype=policy, sync_bn=sync_bn, initializer=initializer) if self.is_gan else None
            self.d_optimizer = self._adam(training.d_lr_factor, training.beta1, policy) if self.is_gan else None
            # Optimizer slots exist before the first step, so a checkpoint can be restored into them.
            self.g_optimizer.build(self.generator.trainable_variables)
            if self.is_gan:
                self.d_optimizer.build(self.discriminator.trainable_variables)
            # --g-ema: a second generator holds the exponential moving average of the first's
            # weights. Built last, so that the other networks' initial weights do not depend on it.
            self.generator_ema = self.weight_average = None
            if g_ema:
                self.generator_ema = build_generator(arch.encoder, arch.dropout_layers, dtype=policy,
                                                     sync_bn=sync_bn, initializer=initializer, dropout=dropout)
                self.weight_average = WeightAverage(self.generator, self.generator_ema, g_ema)
        # XLA is opt-in: it made the CIFAR-10 step slower on CPUs (STYLE.md); GPUs may gain.
        self._train_step = tf.function(self._distributed_step, jit_compile=training.xla or None)
        self._predict = tf.function(
            self._predict_ab, input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])

    # ----------------------------------------------------------------------------------- schedule
    def learning_rate(self, step=None):
        """G's rate: lr * decay_rate^(step / decay_steps), continuous, floored at 1e-6."""
        step = tf.cast(self.step if step is None else step, tf.float32)
        t = self.training
        decayed = t.lr * tf.pow(t.lr_decay_rate, step / t.lr_decay_steps)
        return tf.maximum(decayed, MIN_LEARNING_RATE)

    def _adam(self, factor, beta1, policy):
        # Adam with beta1 = 0 and epsilon = 1e-8 as in the reference (Keras' default is 1e-7).
        optimizer = Adam(learning_rate=lambda: factor * self.learning_rate(),
                                          beta_1=beta1, beta_2=0.999, epsilon=1e-8)
        if policy == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    # ------------------------------------------------------------------------------- training step
    def train_step(self, L, ab):
        """One batch (already on the strategy's devices): returns the losses as float tensors."""
        return self._train_step(L, ab)

    def _distributed_step(self, L, ab):
        self.traces += 1  # runs only while tracing
        losses = self.strategy.run(self._replica_step, args=(L, ab))
        if self.weight_average is not None:
            self.weight_average.update()
        self.step.assign_add(1)
        # Each replica's losses are already divided by the global batch: their sum is the mean.
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in losses.items()}

    def _replica_step(self, L, ab):
        if not self.is_gan:
            return self._generator_step(L, ab)
        if self.training.shared_forward:
            return self._shared_forward_step(L, ab)
        losses, d_gradients = self._discriminator_step(L, ab)
        # The G step reads no variable the D step writes, so the graph could run its forward pass
        # alongside D's backward pass, with both sets of activations in memory: wait for D's.
        with tf.control_dependencies(d_gradients):
            L = tf.identity(L)
        for _ in range(self.training.g_steps):  # G steps per batch after D's
            g_losses = self._generator_step(L, ab)
        return {**losses, **g_losses}

    def _shared_forward_step(self, L, ab):
        """--shared-forward: D's step on the fake colours of the first G step's forward pass (G's
        weights are the same in both), then that G step with D updated, then the other G steps."""
        with tf.GradientTape() as tape:
            fake = self.generator(L, training=True)
            with tape.stop_recording():
                losses, _ = self._discriminator_step(L, ab, tf.stop_gradient(fake))
            g_losses, loss = self._generator_losses(L, ab, fake)
        self._apply(self.g_optimizer, tape, loss, self.generator.trainable_variables)
        for _ in range(self.training.g_steps - 1):
            g_losses = self._generator_step(L, ab)
        return {**losses, **g_losses}

    def _discriminator_step(self, L, ab, fake=None):
        if fake is None:
            fake = self.generator(L, training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator([L, ab], training=True)
            fake_logits = self.discriminator([L, fake], training=True)
            d_real = self._mean(losses.bce_per_example(self.real_label, real_logits))
            d_fake = self._mean(losses.bce_per_example(0.0, fake_logits))
            loss = d_real + d_fake
        gradients = self._apply(self.d_optimizer, tape, loss, self.discriminator.trainable_variables)
        return {"d_real": d_real, "d_fake": d_fake}, gradients

    def _generator_step(self, L, ab):
        with tf.GradientTape() as tape:
            fake = self.generator(L, training=True)
            terms, loss = self._generator_losses(L, ab, fake)
        self._apply(self.g_optimizer, tape, loss, self.generator.trainable_variables)
        return terms

    def _generator_losses(self, L, ab, fake):
        """G's loss terms and their weighted sum: l1_weight * L1 (+ the GAN term)."""
        g_l1 = self._mean(losses.l1_per_example(ab, fake))
        terms = {"g_l1": g_l1}
        loss = self.training.l1_weight * g_l1
        if self.is_gan:
            fake_logits = self.discriminator([L, fake], training=True)
            terms["g_gan"] = self._mean(losses.generator_gan_per_example(fake_logits))
            loss += terms["g_gan"]
        return terms, loss

    def _mean(self, per_example):
        """Sum over this replica's examples divided by the global batch (tf.distribute's rule)."""
        return tf.reduce_sum(per_example) / self.training.batch_size

    @staticmethod
    def _apply(optimizer, tape, loss, variables):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            loss = optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, variables)
        optimizer.apply(gradients, variables)
        return gradients

    # ---------------------------------------------------------------------------------- inference
    def predict_ab(self, L):
        """Normalised L (N, H, W, 1) -> normalised a*b* (N, H, W, 2), inference mode."""
        return self._predict(tf.convert_to_tensor(L, tf.float32))

    def _predict_ab(self, L):
        return tf.cast(self.generator(L, training=False), tf.float32)

    # -------------------------------------------------------------------------------- checkpoints
    def _variable_groups(self):
        # .variables, not .weights: the dropout seed states belong to an exact resume too.
        groups = {"generator": self.generator.variables, "g_optimizer": self.g_optimizer.variables}
        if self.is_gan:
            groups.update(discriminator=self.discriminator.variables,
                          d_optimizer=self.d_optimizer.variables)
        if self.generator_ema is not None:
            groups[EMA_GROUP] = self.generator_ema.variables
        return groups

    def all_finite(self):
        """Whether every floating-point variable (weights, optimizer moments) is finite."""
        variables = [v for group in self._variable_groups().values() for v in group
                     if tf.as_dtype(v.dtype).is_floating]  # Keras 3 variables name their dtype as a string
        return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables]))

    def save(self, path, options, state):
        state = {**state, "step": int(self.step.numpy())}
        if self.weight_average is not None:
            state.update(g_ema=self.training.g_ema, ema_updates=int(self.weight_average.updates.numpy()))
        ckpt.write_checkpoint(path, self._variable_groups(), self.architecture, options, state)

    def broadcast_from_chief(self, numbers):
        """Several workers: all take the variables and `numbers` ({name: number}) of the first
        replica, on the chief, which alone reads the run folder when resuming."""
        counters = [self.step] + ([self.weight_average.updates] if self.weight_average is not None else [])
        variables = counters + [v for group in self._variable_groups().values() for v in group]

        def replica_fn():
            context = tf.distribute.get_replica_context()
            first = tf.cast(tf.equal(context.replica_id_in_sync_group, 0), tf.float64)
            # float64 holds every float32 and every counter exactly: one all-reduce for all dtypes.
            mine = [tf.cast(v, tf.float64) * first for v in variables]
            mine.append(tf.constant(list(numbers.values()), tf.float64) * first)
            return context.all_reduce(tf.distribute.ReduceOp.SUM, mine)

        values = tf.function(lambda: self.strategy.run(replica_fn))()
        values = [self.strategy.experimental_local_results(v)[0] for v in values]
        for variable, value in zip(variables, values):
            variable.assign(tf.cast(value, variable.dtype))
        return dict(zip(numbers, values[-1].numpy().tolist()))

    def restore(self, path):
        """Restores weights, optimizer moments and the step counter; returns the saved state.
        A checkpoint without the weight average (--g-ema turned on when resuming) starts it anew."""
        architecture, _, state = ckpt.read_metadata(path)
        difference = architecture.difference(self.architecture)
        if difference:
            raise ckpt.CheckpointError(f"{path} was written for another architecture: {difference}")
        groups = self._variable_groups()
        fresh_average = EMA_GROUP in groups and EMA_GROUP not in ckpt.group_names(path)
        if fresh_average:
            del groups[EMA_GROUP]
        ckpt.restore_variables(path, groups)
        self.step.assign(state["step"])
        if fresh_average:
            self.weight_average.reset()
            print(f"note: {Path(path).name} has no weight average; --g-ema starts one from its weights",
                  file=sys.stderr)
        elif self.weight_average is not None:
            self.weight_average.updates.assign(state["ema_updates"])
        return state


def mixed_precision_policy():
    """bfloat16 where there is no GPU (CPUs with AVX-512 BF16 / AMX run it natively), else float16."""
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
