import numpy as np
import tensorflow as tf
from PIL import Image

from data.pipeline import array_source, eval_batches, file_source, resize_and_crop, train_batches
from tests.helpers import write_images


def collect(ds):
    return [(int(pos), L.numpy(), ab.numpy()) for pos, L, ab in ds]


def test_array_epochs_are_seeded_permutations_and_resume_mid_epoch_exactly():
    images = np.random.default_rng(0).integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    source = array_source(images)
    full = collect(train_batches(source, 4, seed=1, epoch=2))
    assert [p for p, _, _ in full] == [4, 8, 12, 16, 20, 24, 28]  # full batches only
    resumed = collect(train_batches(source, 4, seed=1, epoch=2, start=12))
    assert len(resumed) == 4
    for (pa, La, aba), (pb, Lb, abb) in zip(full[3:], resumed):
        assert pa == pb and np.array_equal(La, Lb) and np.array_equal(aba, abb)
    other_epoch = collect(train_batches(source, 4, seed=1, epoch=3))
    assert not np.array_equal(full[0][1], other_epoch[0][1])


def test_flips_happen_and_are_horizontal():
    image = np.zeros((1, 8, 8, 3), np.uint8)
    image[0, :, :4] = [200, 30, 30]
    image[0, :, 4:] = [30, 30, 200]
    source = array_source(np.repeat(image, 64, axis=0))
    flipped = [L[:, 0, 0, 0] for _, L, _ in collect(train_batches(source, 64, 0, 0, augment=True))][0]
    left_values = set(np.round(flipped, 3))
    assert len(left_values) == 2  # some images flipped, some not
    plain = collect(train_batches(source, 64, 0, 0, augment=False))[0][1]
    assert len(set(np.round(plain[:, 0, 0, 0], 3))) == 1


def test_grayscale_images_are_dropped_from_training_only():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
    images[3] = images[3, ..., :1]
    assert len(array_source(images)) == 9
    assert len(array_source(images, drop_grayscale=False)) == 10


def test_files_stream_with_corrupt_and_grayscale_files_skipped(tmp_path):
    folder = write_images(tmp_path / "imgs", 6, size=(20, 30))
    Image.fromarray(np.full((20, 30), 90, np.uint8)).convert("RGB").save(folder / "grey.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)  # a JPEG header, no image
    paths = sorted(str(p) for p in folder.iterdir())
    batches = collect(train_batches(file_source(paths, 16), 2, seed=0, epoch=0, augment=False))
    assert sum(len(L) for _, L, _ in batches) == 6
    assert all(L.shape == (2, 16, 16, 1) for _, L, _ in batches)
    rgb, L, ab = next(iter(eval_batches(file_source(paths, 16, drop_grayscale=False), 8)))
    assert rgb.shape == (7, 16, 16, 3)  # grey kept for evaluation, the broken file skipped


def test_resize_and_crop_keeps_the_centre_and_leaves_native_sizes_alone():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 12:68] = 255  # the centre 40x40 (and a margin for the antialiasing filter)
    out = resize_and_crop(tf.constant(image), 20).numpy()
    assert out.shape == (20, 20, 3) and out.min() == 255
    native = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert np.array_equal(resize_and_crop(tf.constant(native), 16).numpy(), native)
