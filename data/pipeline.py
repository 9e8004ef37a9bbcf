"""The shared tf.data pipeline: images -> (L, a*b*) batches for training and evaluation.

A dataset source is either an in-memory uint8 array (CIFAR-10) or a list of image files (Places365,
folders), streamed from disk.  Every training epoch walks a permutation fixed by (seed, epoch), and
each batch carries `position`, how far into that permutation it reaches; a checkpoint stores it, so
a resumed run continues with exactly the images an uninterrupted run would have seen next.
"""
import sys
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from data import color

AUTOTUNE = tf.data.AUTOTUNE


@dataclass
class ImageSource:
    """Either `images` (uint8, N x H x W x 3) or `paths` (image files resized to `image_size`)."""
    images: np.ndarray = None
    paths: np.ndarray = None
    image_size: int = None
    drop_grayscale: bool = True  # files only: decided as they are decoded

    def __len__(self):
        return len(self.images) if self.images is not None else len(self.paths)

    def subset(self, indices):
        if self.images is not None:
            return ImageSource(images=self.images[indices])
        return ImageSource(paths=self.paths[indices], image_size=self.image_size,
                           drop_grayscale=self.drop_grayscale)


def array_source(images, drop_grayscale=True):
    """CIFAR-style arrays; images whose three channels are equal are dropped, as the reference does."""
    grey = np.all(images[..., :1] == images, axis=(1, 2, 3)) & drop_grayscale
    if grey.any():
        print(f"dropped {int(grey.sum())} grayscale images of {len(images)}", file=sys.stderr)
    return ImageSource(images=images[~grey])


def file_source(paths, image_size, drop_grayscale=True):
    return ImageSource(paths=np.asarray(paths, dtype=object).astype(str), image_size=image_size,
                       drop_grayscale=drop_grayscale)


def epoch_permutation(n, seed, epoch):
    return np.random.default_rng([seed, epoch]).permutation(n)


def train_batches(source, batch_size, seed, epoch, start=0, augment=True):
    """One epoch of (position, L, ab) batches, from `start` elements into the epoch's permutation.

    Full batches only: a smaller last batch would retrace the training step.
    """
    order = epoch_permutation(len(source), seed, epoch)[start:]
    positions = np.arange(start + 1, len(source) + 1, dtype=np.int64)
    if source.images is not None:
        images = tf.constant(source.images)
        ds = tf.data.Dataset.from_tensor_slices((positions, order))
        ds = ds.batch(batch_size, drop_remainder=True)
        ds = ds.map(lambda pos, idx: (pos, tf.gather(images, idx)), num_parallel_calls=AUTOTUNE)
    else:
        ds = _decoded_files(tf.data.Dataset.from_tensor_slices((positions, source.paths[order])),
                            source.image_size, source.drop_grayscale)
        ds = ds.batch(batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE)

    def to_model(pos, rgb):
        if augment:
            # Stateless: the same batch of the same epoch flips the same way after a resume.
            key = tf.stack([tf.constant(seed * 7919 + epoch, tf.int64), pos[-1]])
            flip = tf.random.stateless_uniform([tf.shape(rgb)[0]], seed=key) < 0.5
            rgb = tf.where(flip[:, None, None, None], tf.reverse(rgb, axis=[2]), rgb)
        L, ab = color.rgb_to_model_input(rgb)
        return pos[-1], L, ab

    return ds.map(to_model, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def eval_batches(source, batch_size, limit=None):
    """(rgb uint8, L, ab) batches of the first `limit` images in order, the last batch possibly smaller."""
    n = len(source) if limit is None else min(limit, len(source))
    if source.images is not None:
        ds = tf.data.Dataset.from_tensor_slices(source.images[:n])
    else:
        ds = _decoded_files(tf.data.Dataset.from_tensor_slices((np.arange(n), source.paths[:n])),
                            source.image_size, source.drop_grayscale).map(lambda _, rgb: rgb)
    ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE)
    return ds.map(lambda rgb: (rgb, *color.rgb_to_model_input(rgb)),
                  num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def fixed_sample(source, size, seed):
    """(rgb, L, ab) of a fixed, seeded choice of `size` images, in one batch (sample grids)."""
    k = min(size, len(source))
    indices = np.sort(np.random.default_rng(seed).choice(len(source), k, replace=False))
    return next(iter(eval_batches(source.subset(indices), k)))


def _decoded_files(ds, image_size, drop_grayscale):
    """(position, path) -> (position, uint8 image), skipping undecodable (and grayscale) files."""
    ds = ds.map(lambda pos, path: (pos, load_image(path, image_size)),
                num_parallel_calls=AUTOTUNE, deterministic=True)
    # A corrupt file (truncated JPEG, bad header) logs one warning line and is skipped.
    ds = ds.ignore_errors(log_warning=True)
    if not drop_grayscale:
        return ds
    return ds.filter(lambda pos, rgb: tf.logical_not(is_grayscale(rgb)))


def load_image(path, image_size):
    """Reads and decodes an image file to uint8 RGB, resized (shorter side) and centre-cropped."""
    rgb = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return resize_and_crop(rgb, image_size)


def resize_and_crop(rgb, size):
    shape = tf.shape(rgb)
    h, w = shape[0], shape[1]

    def resize():
        scale = size / tf.cast(tf.minimum(h, w), tf.float32)
        new_h = tf.maximum(size, tf.cast(tf.round(tf.cast(h, tf.float32) * scale), tf.int32))
        new_w = tf.maximum(size, tf.cast(tf.round(tf.cast(w, tf.float32) * scale), tf.int32))
        resized = tf.image.resize(rgb, [new_h, new_w], antialias=True)
        top, left = (new_h - size) // 2, (new_w - size) // 2
        cropped = resized[top:top + size, left:left + size]
        return tf.cast(tf.clip_by_value(tf.round(cropped), 0, 255), tf.uint8)

    # Places365 images are already 256x256: no resampling at all for them.
    out = tf.cond(tf.logical_and(tf.equal(h, size), tf.equal(w, size)), lambda: rgb, resize)
    return tf.ensure_shape(out, [size, size, 3])


def is_grayscale(rgb):
    return tf.reduce_all(tf.logical_and(tf.equal(rgb[..., 0], rgb[..., 1]),
                                        tf.equal(rgb[..., 1], rgb[..., 2])))
