"""The colorization model: owns the generator, the discriminator, their optimizers, the training
step and checkpoint I/O.

`model="gan"` is the paper's conditional GAN; `model="unet"` is its CNN baseline, the same
generator trained with the L1 term alone.  All numbers come from docs/recipe.md ("Losses and
schedule").
"""
import json
import sys
from pathlib import Path

import keras
import tensorflow as tf

from config import TrainingConfig
from models import checkpoint as ckpt
from models.lowmem.normalization import set_inference_statistics
from models.registry import DEFAULT_IMPLEMENTATION, DISCRIMINATORS, GENERATORS, MODELS, builder

MIN_LEARNING_RATE = 1e-6  # reference code: the decayed rate is floored here
EMA_GROUP = "generator_ema"  # the checkpoint group of the generator's weight average (--g-ema)

def architecture(model, encoder, dropout_layers, image_size, mixed_precision=False, generator="unet",
                 discriminator="patchgan"):
    """The part of a run's options that fixes the variables; stored in every checkpoint."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; valid models: {', '.join(MODELS)}")
    return {"model": model, "generator": generator, "discriminator": discriminator,
            "encoder": [list(layer) for layer in encoder], "dropout_layers": dropout_layers,
            "image_size": image_size, "mixed_precision": bool(mixed_precision)}


class ColorizationModel:
    """`config`: the architecture (what fixes the variables, `architecture()`); `training`: the
    rest of the run's configuration (config.TrainingConfig; default: the paper's recipe). The
    strategy, sync_bn and the implementation are runtime choices: the same variables either way."""

    def __init__(self, config, training=None, strategy=None):
        self.config = config
        self.training = training = (training or TrainingConfig()).resolved()
        self.strategy = strategy or tf.distribute.get_strategy()
        self.is_gan = config["model"] == "gan"
        self.lr, self.lr_decay_rate, self.lr_decay_steps = training.lr, training.lr_decay_rate, training.lr_decay_steps
        self.l1_weight = training.l1_weight
        self.real_label = 0.9 if training.label_smoothing else 1.0  # one-sided label smoothing
        self.global_batch_size = training.batch_size
        self.g_ema = g_ema = training.g_ema
        if not (isinstance(training.g_steps, int) and training.g_steps >= 1):
            raise ValueError(f"g_steps must be a positive integer, not {training.g_steps!r}")
        self.g_steps = training.g_steps  # G steps per batch after D's (GAN only)
        self.weights_used = "raw"  # load_for_inference may read the weight average instead
        self.traces = 0  # how often the training step was traced (one per input shape)
        sync_bn, initializer, dropout = bool(training.sync_bn), training.init, training.dropout
        policy = mixed_precision_policy() if config["mixed_precision"] else None
        with self.strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            # The networks by name (models/registry.py).
            build_generator = builder(GENERATORS, config.get("generator", "unet"), training.implementation)
            self.generator = build_generator(config["encoder"], config["dropout_layers"],
                                             dtype=policy, sync_bn=sync_bn, initializer=initializer,
                                             dropout=dropout, zero_head=training.zero_head)
            self.g_optimizer = self._adam(1.0, training.beta1, policy)
            build_discriminator = builder(DISCRIMINATORS, config.get("discriminator", "patchgan"),
                                          training.implementation)
            self.discriminator = build_discriminator(dtype=policy, sync_bn=sync_bn, initializer=initializer) if self.is_gan else None
            self.d_optimizer = self._adam(training.d_lr_factor, training.beta1, policy) if self.is_gan else None
            # Optimizer slots exist before the first step, so a checkpoint can be restored into them.
            self.g_optimizer.build(self.generator.trainable_variables)
            if self.is_gan:
                self.d_optimizer.build(self.discriminator.trainable_variables)
            # --g-ema: a second generator holds the exponential moving average of the first's
            # weights. Built last, so that the other networks' initial weights do not depend on it.
            self.generator_ema = self.ema_updates = None
            if g_ema:
                self.generator_ema = build_generator(config["encoder"], config["dropout_layers"], dtype=policy,
                                                     sync_bn=sync_bn, initializer=initializer, dropout=dropout)
                self.ema_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="ema_updates")
        if g_ema:
            self.reset_ema()
        # XLA is opt-in: it made the CIFAR-10 step slower on CPUs (STYLE.md); GPUs may gain.
        self._train_step = tf.function(self._distributed_step, jit_compile=training.xla or None)
        self._predict = tf.function(
            self._predict_ab, input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])

    # ----------------------------------------------------------------------------------- schedule
    def learning_rate(self, step=None):
        """G's rate: lr * decay_rate^(step / decay_steps), continuous, floored at 1e-6."""
        step = tf.cast(self.step if step is None else step, tf.float32)
        decayed = self.lr * tf.pow(self.lr_decay_rate, step / self.lr_decay_steps)
        return tf.maximum(decayed, MIN_LEARNING_RATE)

    def _adam(self, factor, beta1, policy):
        # Adam with beta1 = 0 and epsilon = 1e-8 as in the reference (Keras' default is 1e-7).
        optimizer = keras.optimizers.Adam(learning_rate=lambda: factor * self.learning_rate(),
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
        if self.generator_ema is not None:
            self._update_ema()
        self.step.assign_add(1)
        # Each replica's losses are already divided by the global batch: their sum is the mean.
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in losses.items()}

    def _replica_step(self, L, ab):
        if not self.is_gan:
            return self._generator_step(L, ab)
        losses, d_gradients = self._discriminator_step(L, ab)
        # The G step reads no variable the D step writes, so the graph could run its forward pass
        # alongside D's backward pass, with both sets of activations in memory: wait for D's.
        with tf.control_dependencies(d_gradients):
            L = tf.identity(L)
        for _ in range(self.g_steps):
            g_losses = self._generator_step(L, ab)
        return {**losses, **g_losses}

    def _discriminator_step(self, L, ab):
        fake = self.generator(L, training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator([L, ab], training=True)
            fake_logits = self.discriminator([L, fake], training=True)
            d_real = self._mean(bce_per_example(self.real_label, real_logits))
            d_fake = self._mean(bce_per_example(0.0, fake_logits))
            loss = d_real + d_fake
        gradients = self._apply(self.d_optimizer, tape, loss, self.discriminator.trainable_variables)
        return {"d_real": d_real, "d_fake": d_fake}, gradients

    def _generator_step(self, L, ab):
        with tf.GradientTape() as tape:
            fake = self.generator(L, training=True)
            g_l1 = self._mean(tf.reduce_mean(tf.abs(ab - fake), axis=[1, 2, 3]))
            losses = {"g_l1": g_l1}
            loss = self.l1_weight * g_l1
            if self.is_gan:
                # Non-saturating GAN term: fake patches labelled real.
                fake_logits = self.discriminator([L, fake], training=True)
                losses["g_gan"] = self._mean(bce_per_example(1.0, fake_logits))
                loss += losses["g_gan"]
        self._apply(self.g_optimizer, tape, loss, self.generator.trainable_variables)
        return losses

    # ------------------------------------------------------------------------- weight average (EMA)
    def ema_decay(self, updates):
        """The average's decay at its n-th update: min(g_ema, (1 + n) / (10 + n)). Early in a run
        (n small) the average spans about the last n / 9 steps, not the weights it started from."""
        n = tf.cast(updates, tf.float32)
        return tf.minimum(tf.constant(self.g_ema, tf.float32), (1.0 + n) / (10.0 + n))

    def _update_ema(self):
        """After each training step (both G steps): average <- d * average + (1 - d) * weights, for
        every floating-point variable of G, BatchNorm's moving statistics included."""
        decay = self.ema_decay(self.ema_updates)
        for average, variable in self._ema_pairs():
            average.assign(decay * average + (1.0 - decay) * variable)
        self.ema_updates.assign_add(1)

    def _ema_pairs(self):
        return [(a, v) for a, v in zip(self.generator_ema.variables, self.generator.variables)
                if tf.as_dtype(v.dtype).is_floating]

    def reset_ema(self):
        """The average starts as the generator's current weights (a new run, --init-generator, or
        --g-ema turned on when resuming)."""
        for average, variable in zip(self.generator_ema.variables, self.generator.variables):
            average.assign(variable)
        self.ema_updates.assign(0)

    def _mean(self, per_example):
        """Sum over this replica's examples divided by the global batch (tf.distribute's rule)."""
        return tf.reduce_sum(per_example) / self.global_batch_size

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
        if self.generator_ema is not None:
            state.update(g_ema=self.g_ema, ema_updates=int(self.ema_updates.numpy()))
        ckpt.write_checkpoint(path, self._variable_groups(), self.config, options, state)

    def broadcast_from_chief(self, numbers):
        """Several workers: all take the variables and `numbers` ({name: number}) of the first
        replica, on the chief, which alone reads the run folder when resuming."""
        counters = [self.step] + ([self.ema_updates] if self.generator_ema is not None else [])
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
        config, _, state = ckpt.read_metadata(path)
        if config != self.config:
            raise ckpt.CheckpointError(f"{path} was written for another architecture: "
                                       f"{describe_difference(config, self.config)}")
        groups = self._variable_groups()
        fresh_average = EMA_GROUP in groups and EMA_GROUP not in ckpt.group_names(path)
        if fresh_average:
            del groups[EMA_GROUP]
        ckpt.restore_variables(path, groups)
        self.step.assign(state["step"])
        if fresh_average:
            self.reset_ema()
            print(f"note: {Path(path).name} has no weight average; --g-ema starts one from its weights",
                  file=sys.stderr)
        elif self.generator_ema is not None:
            self.ema_updates.assign(state.get("ema_updates", 0))
        return state


def bce_per_example(target, logits):
    """Sigmoid cross-entropy against a constant target, averaged over the patches of each example."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.fill(tf.shape(logits), tf.constant(target, tf.float32))
    loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(loss, axis=[1, 2, 3])


def mixed_precision_policy():
    """bfloat16 where there is no GPU (CPUs with AVX-512 BF16 / AMX run it natively), else float16."""
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def describe_difference(saved, wanted):
    keys = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    return "; ".join(f"{k} is {saved.get(k)} in the checkpoint, {wanted.get(k)} here" for k in keys)


def load_for_inference(path, mixed_precision=None, bn_statistics="moving", weights="ema"):
    """A model restored from a checkpoint file or run folder, plus its (config, options, state);
    or export.py's generator.keras (load_exported).

    mixed_precision: None runs the generator in the precision it was trained in; True / False
    choose 16-bit (bfloat16 on CPUs, float16 on GPUs) or float32 inference whatever the training
    was: the variables are float32 either way, so only the generator's weights are read.
    bn_statistics: "moving" (BatchNorm's moving averages) or "batch" (each batch's own statistics,
    as the reference code evaluated; models/lowmem/normalization.py).
    weights: "ema" takes the average of the generator's weights (train.py --g-ema) where the
    checkpoint has one, "raw" the weights as trained; `model.weights_used` says which was read.
    """
    if weights not in ("ema", "raw"):
        raise ValueError(f"weights must be 'ema' or 'raw', not {weights!r}")
    path = ckpt.resolve_checkpoint(path)
    if path.suffix == ".keras":
        return load_exported(path, bn_statistics)
    config, options, state = ckpt.read_metadata(path)
    if mixed_precision is not None:
        config = {**config, "mixed_precision": bool(mixed_precision)}
    # The network and implementation the run trained (models/registry.py). Keras' own BatchNorm has
    # no batch-statistics inference: that protocol takes the memory-saving layers where the network
    # has them (the same variables).
    implementation = options.get("implementation", DEFAULT_IMPLEMENTATION)
    if bn_statistics == "batch" and "lowmem" in GENERATORS.get(config.get("generator", "unet"), {}):
        implementation = "lowmem"
    model = ColorizationModel(config, TrainingConfig(implementation=implementation))
    group = generator_group(path, weights)
    ckpt.restore_variables(path, {group: model.generator.variables})
    model.weights_used = "ema" if group == EMA_GROUP else "raw"
    model.step.assign(state["step"])
    try:
        set_inference_statistics(model.generator, bn_statistics)
    except ValueError as e:
        raise ckpt.CheckpointError(f"{path}: the {config.get('generator', 'unet')} generator: {e}") from None
    return model, options, state


class GeneratorOnly:
    """A generator alone where inference expects a model: `predict_ab`, the `config` keys inference
    reads and `weights_used`. The weight average of a training run (`ema_view`), or an export."""

    def __init__(self, generator, config, weights_used="raw"):
        self.generator, self.config, self.weights_used = generator, config, weights_used
        self._predict = tf.function(lambda L: tf.cast(generator(L, training=False), tf.float32),
                                    input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])

    def predict_ab(self, L):
        return self._predict(tf.convert_to_tensor(L, tf.float32))


def generator_group(path, weights="ema"):
    """The checkpoint group to read a generator from: the weight average (--g-ema) where `weights`
    is "ema" and the checkpoint has one, else the trained weights."""
    return EMA_GROUP if weights == "ema" and EMA_GROUP in ckpt.group_names(path) else "generator"


def ema_view(model):
    """The weight average (--g-ema) of a training model, for evaluation; made once per model, so
    that its prediction function is traced once, not at every evaluation."""
    if getattr(model, "_ema_view", None) is None:
        model._ema_view = GeneratorOnly(model.generator_ema, model.config, "ema")
    return model._ema_view


class ExportedGenerator(GeneratorOnly):
    """export.py's generator.keras: the config keys inference reads (image_size; encoder, for the
    sizes the network takes)."""

    def __init__(self, generator, image_size, weights_used="raw"):
        # The strided convolutions fix the sizes the network takes (models/presets.py).
        strided = [(layer.filters, layer.strides[0]) for layer in generator._flatten_layers(include_self=False)
                   if type(layer) is keras.layers.Conv2D]
        super().__init__(generator, {"model": "exported", "encoder": strided, "image_size": image_size},
                         weights_used)


def load_exported(path, bn_statistics="moving", check_digest=True):
    """(model, options, state) of export.py's generator.keras: BatchNorm's moving statistics, run in
    float32 (float16 weights, export.py --float16, are widened on loading). The run's options and
    state come from the export.json beside it (export.py writes both), which also holds the file's
    SHA-256: a file that does not match it is refused. Without an export.json only colorize.py
    works, and it needs --size."""
    if bn_statistics != "moving":
        raise ckpt.CheckpointError(f"{path}: an exported generator has BatchNorm's moving statistics only; "
                                   f"--bn-statistics batch needs a training checkpoint (step_*.h5)")
    meta_path = Path(path).with_name("export.json")
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    except (OSError, ValueError) as e:
        raise ckpt.CheckpointError(f"{meta_path} is unreadable ({e})") from None
    digest = ((meta.get("formats") or {}).get("keras") or {}).get("sha256") if isinstance(meta, dict) else None
    if check_digest and digest and ckpt.sha256(path) != digest:
        raise ckpt.CheckpointError(f"{path} is damaged or was replaced: its SHA-256 is not the one {meta_path.name} "
                                   f"records (restore it, e.g. git checkout -- {Path(path).name})")
    try:
        generator = keras.models.load_model(path, compile=False)  # safe mode: no code is deserialised
    except Exception as e:  # Keras raises many kinds for a bad file
        raise ckpt.CheckpointError(f"{path} is not a Keras model ({type(e).__name__}: "
                                   f"{str(e).strip().splitlines()[0] if str(e).strip() else 'unreadable'})") from None
    shapes = (tuple(generator.inputs[0].shape) if len(generator.inputs) == 1 else None,
              tuple(generator.outputs[0].shape) if len(generator.outputs) == 1 else None)
    if shapes[0] is None or shapes[1] is None or shapes[0][-1] != 1 or shapes[1][-1] != 2:
        raise ckpt.CheckpointError(f"{path} is not a colorization generator (L in, a*b* out): its inputs and "
                                   f"outputs are {shapes}")
    generator = in_float32(generator)
    options = meta.get("options") or {}
    state = meta.get("state") or {"step": meta.get("step", 0), "epoch": 0}
    model = ExportedGenerator(generator, options.get("image_size") or meta.get("image_size"),
                              meta.get("weights", "raw"))
    return model, options, state


def in_float32(model):
    """The same Keras model computing in float32 (a copy, where any layer is in another dtype)."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def widened(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=widened)
    for a, b in zip(model.variables, copy.variables):
        b.assign(keras.ops.cast(a, b.dtype))
    return copy
