"""The automatic Turing test (test.py's "Classifier" column): a small network, trained from scratch,
tries to tell real photos from their colorized copies. A two-sample classifier test (Lopez-Paz and
Oquab 2017): it learns on the pairs of one half of the photos and is scored on the pairs of the
other half, so 50 % means the colorized photos cannot be told from real ones and 100 % means they
always can. Each photo's real and colorized copy fall in the same half: the classifier never scores
a photo whose other copy it trained on.
"""
import keras
import numpy as np
import tensorflow as tf

SIZE = 64  # the classifier's input side: colour and local texture, at the size of Tiny ImageNet


def classifier_network(seed):
    """Four strided 3x3 convolutions, global average pooling and a logit: about 60,000 weights."""
    def init(i):
        return keras.initializers.HeNormal(seed=seed + i)

    inputs = keras.Input((SIZE, SIZE, 3))
    x = inputs
    for i, filters in enumerate((16, 32, 64, 64)):
        x = keras.layers.Conv2D(filters, 3, 2, padding="same", activation="relu", kernel_initializer=init(i))(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(1, kernel_initializer=init(9))(x), name="real_or_colorized")


def shrink(rgb):
    """A uint8 or 0-255 float batch at the classifier's size (area averaging), uint8."""
    x = tf.image.resize(tf.cast(rgb, tf.float32), (SIZE, SIZE), method="area", antialias=True)
    return np.round(np.clip(x.numpy(), 0, 255)).astype(np.uint8)


def classifier_test(real, colorized, epochs=10, batch_size=64, seed=0):
    """(held-out accuracy after the last epoch, held-out accuracy after each epoch).

    real, colorized: uint8 batches of the same photos (colorized[i] is real[i] colorized), at least
    4 photos, any size (shrunk to SIZE).
    """
    real, colorized = shrink(real), shrink(colorized)
    if real.shape != colorized.shape or len(real) < 4:
        raise ValueError(f"the classifier test needs at least 4 pairs of images, got {real.shape}, {colorized.shape}")
    order = np.random.default_rng(seed).permutation(len(real))
    halves = order[:len(order) // 2], order[len(order) // 2:]

    def pairs(indices):
        x = np.concatenate([real[indices], colorized[indices]]).astype(np.float32) / 127.5 - 1.0
        y = np.concatenate([np.ones(len(indices)), np.zeros(len(indices))]).astype(np.float32)
        return x, y

    (x_train, y_train), (x_test, y_test) = pairs(halves[0]), pairs(halves[1])
    network = classifier_network(seed)
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    # One traced step and one traced prediction for all the epochs (keras' fit and predict, called
    # once per epoch for the curve, would build their pipelines and functions again each time).
    @tf.function(reduce_retracing=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y[:, None], network(x, training=True))
        optimizer.apply(tape.gradient(loss, network.trainable_variables), network.trainable_variables)

    @tf.function(reduce_retracing=True)
    def logits(x):
        return network(x, training=False)[:, 0]

    shuffle = np.random.default_rng(seed + 1)
    curve = []
    for _ in range(epochs):
        p = shuffle.permutation(len(x_train))
        for start in range(0, len(p), batch_size):
            batch = p[start:start + batch_size]
            train_step(x_train[batch], y_train[batch])
        predicted = np.concatenate([logits(x_test[i:i + 256]).numpy() for i in range(0, len(x_test), 256)])
        curve.append(float(np.mean((predicted > 0) == (y_test > 0.5))))
    return curve[-1], curve
