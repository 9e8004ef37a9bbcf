"""The paper's losses (docs/recipe.md, "Losses and schedule"), per example. The training step
(models/colorization.py) sums each over a replica's examples and divides by the global batch
(tf.distribute's rule), and weighs them: D = real + fake; G = l1_weight * L1 + GAN term.
"""
import tensorflow as tf


def l1_per_example(ab, fake):
    """Mean absolute a*b* error of each example (normalised units, a*b* / 110)."""
    return tf.reduce_mean(tf.abs(ab - fake), axis=[1, 2, 3])


def bce_per_example(target, logits):
    """Sigmoid cross-entropy against a constant target, averaged over the patches of each example:
    the discriminator's loss on real pairs (target 1, or 0.9 with label smoothing) and fake ones (0)."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.fill(tf.shape(logits), tf.constant(target, tf.float32))
    loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(loss, axis=[1, 2, 3])


def generator_gan_per_example(fake_logits):
    """The generator's non-saturating GAN term: its colours' patches labelled real."""
    return bce_per_example(1.0, fake_logits)
