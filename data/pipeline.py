"""The shared tf.data pipeline: images -> (L, a*b*) batches for training and evaluation.

A dataset source is either an in-memory uint8 array (CIFAR-10) or a list of image files (Places365,
folders), streamed from disk.  Every training epoch walks a permutation fixed by (seed, epoch), and
each batch carries `position`, how far into that permutation it reaches; a checkpoint stores it, so
a resumed run continues with exactly the images an uninterrupted run would have seen next.
"""
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
from PIL import Image

from data import color
from data.errors import DatasetError
from data.limits import DEFAULT_MEGAPIXELS, header_problem, pixel_problem, read_header

log = logging.getLogger(__name__)
AUTOTUNE = tf.data.AUTOTUNE
# Batches decoded ahead of the training step. A fixed number, not AUTOTUNE: against a slow step
# (a Places365 batch takes 20 s on a CPU) tf.data's autotuning keeps buffering, up to hundreds of
# megabytes, and more the larger the dataset; two batches keep a GPU fed as well.
PREFETCH_BATCHES = 2


@dataclass
class ImageSource:
    """Either `images` (uint8, N x H x W x 3) or `paths` (image files resized to `image_size`)."""
    images: np.ndarray = None
    paths: np.ndarray = None
    image_size: int = None
    drop_grayscale: bool = True  # files only: decided as they are decoded
    dropped: int = 0  # arrays: grayscale images dropped when the source was made
    skipped: set = field(default_factory=set, repr=False, compare=False)  # files: undecodable, named once
    max_megapixels: float = DEFAULT_MEGAPIXELS  # files: larger ones are skipped undecoded (data/limits.py)

    def __len__(self):
        return len(self.images) if self.images is not None else len(self.paths)

    def subset(self, indices):
        if self.images is not None:
            return ImageSource(images=self.images[indices])
        return ImageSource(paths=self.paths[indices], image_size=self.image_size, skipped=self.skipped,
                           drop_grayscale=self.drop_grayscale, max_megapixels=self.max_megapixels)


def array_source(images, drop_grayscale=True):
    """CIFAR-style arrays; images whose three channels are equal are dropped, as the reference does."""
    grey = np.all(images[..., :1] == images, axis=(1, 2, 3)) & drop_grayscale
    return ImageSource(images=images[~grey], dropped=int(grey.sum()))


def file_source(paths, image_size, drop_grayscale=True, max_megapixels=DEFAULT_MEGAPIXELS):
    return ImageSource(paths=np.asarray(paths, dtype=object).astype(str), image_size=image_size,
                       drop_grayscale=drop_grayscale, max_megapixels=max_megapixels)


def epoch_permutation(n, seed, epoch):
    return np.random.default_rng([seed, epoch]).permutation(n)


def train_batches(source, batch_size, seed, epoch, start=0, augment=True, shard=None):
    """One epoch of (position, L, ab) batches, from `start` elements into the epoch's permutation.

    Full batches only: a smaller last batch would retrace the training step.  `shard` =
    (index, count, replica_batch) makes this input pipeline `index` of `count` in a distributed
    run: of every global batch of `batch_size` elements it reads only its contiguous slice, as
    batches of `replica_batch` (one per replica of its worker), so the union over the pipelines
    of one step is exactly the batch a single-device run sees, and `position` is the end of that
    global batch.
    """
    n = len(source)
    # Flips are decided per element with the permutation, so any batching flips an image alike.
    flips = np.random.default_rng([seed, epoch, 1]).random(n) < 0.5
    flips = (flips & augment)[start:]
    order = epoch_permutation(n, seed, epoch)[start:]
    offsets = np.arange(n - start, dtype=np.int64)
    positions = start + offsets + 1
    if shard is not None:
        index, count, batch = shard
        assert batch_size % count == 0 and batch_size // count % batch == 0, (batch_size, shard)
        offsets = offsets[:len(offsets) // batch_size * batch_size]
        mine = offsets % batch_size // (batch_size // count) == index
        positions = (start + (offsets // batch_size + 1) * batch_size)[mine]
        order, flips = order[:len(offsets)][mine], flips[:len(offsets)][mine]
        batch_size = batch
    if source.images is not None:
        images = tf.constant(source.images)
        ds = tf.data.Dataset.from_tensor_slices(((positions, flips), order))
        ds = ds.batch(batch_size, drop_remainder=True)
        ds = ds.map(lambda key, idx: (key, tf.gather(images, idx)), num_parallel_calls=AUTOTUNE)
    else:
        ds = _decoded_files(source, (positions, flips), order)
        if shard is not None:
            # A skipped file is replaced by one of this pipeline's first images: every worker has
            # to run the same number of steps.
            ds = ds.repeat().take(len(order))
        ds = ds.batch(batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE)

    def to_model(key, rgb):
        pos, flip = key
        rgb = tf.where(flip[:, None, None, None], tf.reverse(rgb, axis=[2]), rgb)
        L, ab = color.rgb_to_model_input(rgb)
        return tf.reduce_max(pos), L, ab

    return ds.map(to_model, num_parallel_calls=AUTOTUNE).prefetch(PREFETCH_BATCHES)


def distributed_train_batches(strategy, source, batch_size, seed, epoch, start=0, augment=True):
    """`train_batches` over the replicas of a tf.distribute strategy: each worker reads its own share
    of every global batch of `batch_size` (and each of its replicas a per-replica batch)."""
    def dataset(context):
        shard = (context.input_pipeline_id, context.num_input_pipelines,
                 context.get_per_replica_batch_size(batch_size))
        return train_batches(source, batch_size, seed, epoch, start, augment, shard)

    return strategy.distribute_datasets_from_function(dataset)


def eval_batches(source, batch_size, limit=None):
    """(rgb uint8, L, ab) batches of the first `limit` images in order, the last batch possibly smaller."""
    n = len(source) if limit is None else min(limit, len(source))
    if source.images is not None:
        ds = tf.data.Dataset.from_tensor_slices(source.images[:n])
    else:
        ds = _decoded_files(source, np.arange(n), np.arange(n)).map(lambda _, rgb: rgb)
    ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE)
    return ds.map(lambda rgb: (rgb, *color.rgb_to_model_input(rgb)),
                  num_parallel_calls=AUTOTUNE).prefetch(PREFETCH_BATCHES)


def fixed_sample(source, size, seed):
    """(rgb, L, ab) of a fixed, seeded choice of `size` images, in one batch (sample grids)."""
    k = min(size, len(source))
    indices = np.sort(np.random.default_rng(seed).choice(len(source), k, replace=False))
    batch = next(iter(eval_batches(source.subset(indices), k)), None)
    if batch is None:  # every chosen file was undecodable
        raise DatasetError(f"no usable test images among {k} sampled of {len(source)} (not decodable; "
                           f"see the warnings above)")
    return batch


def _decoded_files(source, keys, indices):
    """(key, uint8 image) of the files source.paths[indices], in order, with `keys` (arrays, one
    entry per index) beside them. A file that does not decode (truncated, corrupt inside) or is over
    the pixel limit (data/limits.py) is skipped with a warning that names it and why, once per
    source; grayscale files are dropped when the source says so.
    """
    n = len(indices)
    paths = source.paths[indices]
    if n == 0:
        return tf.data.Dataset.from_tensor_slices((keys, np.zeros((0, source.image_size, source.image_size, 3),
                                                                   np.uint8)))
    path_table = tf.constant([os.fsencode(p) for p in paths])  # bytes: a name need not be UTF-8
    blank = tf.zeros([source.image_size, source.image_size, 3], tf.uint8)

    def decode(i):  # i == n is a sentinel: it shows files skipped at the very end
        return i, tf.cond(i < n, lambda: load_image(path_table[tf.minimum(i, n - 1)], source.image_size,
                                                     source.max_megapixels), lambda: blank)

    def report(first, end):  # Python, between two decoded files: the ones in between were skipped
        for path in paths[int(first):int(end)]:
            if path not in source.skipped:
                source.skipped.add(path)
                why = header_problem(path, source.max_megapixels, source.image_size)
                log.warning("skipping %s: %s", path, why or "not decodable (truncated or corrupt)")
        return np.int64(0)

    def name_skipped(expected, element):
        i, rgb = element
        noted = tf.cond(i > expected, lambda: tf.py_function(report, [expected, i], tf.int64),
                        lambda: tf.constant(0, tf.int64))
        with tf.control_dependencies([noted]):
            return i + 1, (tf.identity(i), rgb)

    ds = tf.data.Dataset.range(n + 1).map(decode, num_parallel_calls=AUTOTUNE, deterministic=True)
    # TensorFlow's own warning would not name the file, and would repeat every epoch.
    ds = ds.ignore_errors().scan(tf.constant(0, tf.int64), name_skipped).filter(lambda i, rgb: i < n)
    if source.drop_grayscale:
        ds = ds.filter(lambda i, rgb: tf.logical_not(is_grayscale(rgb)))
    key_table = tf.nest.map_structure(tf.constant, keys)
    return ds.map(lambda i, rgb: (tf.nest.map_structure(lambda k: tf.gather(k, i), key_table), rgb),
                  num_parallel_calls=AUTOTUNE)


# How load_image reads a file, decided from its header by Pillow (no pixels decoded): TensorFlow's
# decoder; Pillow's, for a kind TensorFlow cannot read (animated WebP: its decoder refuses RGB
# frames, and aborts the process when asked for their own channels); or not at all (over the
# pixel limit).
BY_TENSORFLOW, BY_PILLOW, REFUSED = 0, 1, 2


def decoder_for(path, max_megapixels, image_size):
    header = read_header(path)
    if header is None:  # TensorFlow's decoder then fails, and the file is named
        return BY_TENSORFLOW
    if pixel_problem(header.width, header.height, max_megapixels, image_size):
        return REFUSED
    return BY_PILLOW if header.format == "WEBP" and header.animated else BY_TENSORFLOW


def _pillow_rgb(path):
    with Image.open(os.fsdecode(path.numpy())) as image:
        return np.asarray(image.convert("RGB"))  # the first frame


def load_image(path, image_size, max_megapixels=DEFAULT_MEGAPIXELS):
    """Reads and decodes an image file to uint8 RGB, resized (shorter side) and centre-cropped; an
    error, before anything is decoded, where its header is over the pixel limit."""
    decoder = tf.py_function(lambda p: decoder_for(os.fsdecode(p.numpy()), max_megapixels, image_size),
                             [path], tf.int32)
    with tf.control_dependencies([tf.debugging.Assert(decoder != REFUSED, ["over the pixel limit:", path])]):
        data = tf.io.read_file(path)

    def by_pillow():
        rgb = tf.py_function(_pillow_rgb, [path], tf.uint8)
        rgb.set_shape([None, None, 3])
        return rgb

    rgb = tf.cond(decoder == BY_PILLOW, by_pillow,
                  lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
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
