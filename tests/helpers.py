"""Small builders shared by the tests: tiny models, tiny images, tiny datasets, tiny training runs."""
import socket

import numpy as np
import tensorflow as tf
from PIL import Image

from options import TrainingConfig
from models.architecture import Architecture
from models.colorization import ColorizationModel

# A U-Net with the paper's structure but a few filters, so a training step takes milliseconds.
TINY_ENCODER = [(8, 1), (16, 2), (16, 2)]


# train.py's options for a run on image_folder()'s photos that takes seconds; each test file adds its own.
# The half-width U-Net: a quarter of the paper's weights, so each checkpoint a test writes is about
# 50 MB, not 200.
TINY_OPTIONS = ["--dataset", "folder", "--image-size", "16", "--batch-size", "4", "--log-interval", "1",
                "--eval-images", "4", "--no-progress", "--generator", "unet-narrow"]


def tiny_model(kind="gan", batch=4, mixed_precision=False, **hparams):
    architecture = Architecture(kind, TINY_ENCODER, 1, 16, mixed_precision)
    return ColorizationModel(architecture, TrainingConfig(batch_size=batch, **hparams))  # hparams: its fields


def tiny_checkpoint(path, kind="gan", steps=0, options=None):
    """A tiny model trained `steps` steps on random batches, saved at `path` with these options."""
    model = tiny_model(kind)
    for seed in range(steps):
        model.train_step(*random_batch(seed=seed))
    model.save(path, {"dataset": "folder", "image_size": 16, "batch_size": 4, "model": kind, **(options or {})},
               {"epoch": 0, "position": 4 * steps})
    return path


def random_batch(batch=4, size=16, seed=0):
    rng = np.random.default_rng(seed)
    L = tf.constant(rng.uniform(-1, 1, (batch, size, size, 1)), tf.float32)
    ab = tf.constant(rng.uniform(-0.3, 0.3, (batch, size, size, 2)), tf.float32)
    return L, ab


def colouring_task(n, size=16, seed=0):
    """Images whose colour follows from their lightness and shape: bright discs are orange, the
    dark background blue.  A colorizer can learn it; predicting no colour cannot."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(4, size - 4), rng.uniform(4, size - 4), rng.uniform(2, 5)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        images[i] = np.where(disc[..., None], [240, 160, 40], [30, 50, 120])
    return images


def write_images(folder, count, size=(20, 24), seed=0, ext="png"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:03d}.{ext}")
    return folder


def image_folder(root, train=22, test=6):
    """A --dataset folder tree: `train` 20x24 training images and `test` 16x16 test images."""
    write_images(root / "train", train, size=(20, 24))
    write_images(root / "test", test, size=(16, 16), seed=1)
    return root


def tiny_training(options):
    """run(images, run_dir, *extra): train.py's main on a photo folder with `options` (TINY_OPTIONS
    and a test module's own) into `run_dir`; returns its exit status."""
    import train

    def run(images, run_dir, *extra):
        return train.main([*options, "--dataset-path", str(images), "--checkpoints-path", str(run_dir), *extra])
    return run


def free_ports(count):
    """`count` TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
