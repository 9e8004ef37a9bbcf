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


def sharded_steps(source, batch_size, count, replica_batch, start=0):
    """The batches each of `count` input pipelines yields, zipped step by step."""
    pipelines = [collect(train_batches(source, batch_size, seed=3, epoch=1, start=start,
                                       shard=(index, count, replica_batch)))
                 for index in range(count)]
    per_step = batch_size // (count * replica_batch)  # batches each pipeline yields per global batch
    steps = []
    for pipeline in pipelines:
        assert len(pipeline) % per_step == 0
    for s in range(len(pipelines[0]) // per_step):
        parts = [b for p in pipelines for b in p[s * per_step:(s + 1) * per_step]]
        steps.append(parts)
    return steps


def test_sharded_pipelines_together_read_exactly_the_single_device_batches():
    # 2 pipelines x 2 replicas (two workers with two GPUs each) and 1 pipeline x 2 replicas
    # (mirrored on one machine): every global batch is split, nothing duplicated or skipped.
    images = np.random.default_rng(0).integers(0, 256, (37, 8, 8, 3), dtype=np.uint8)
    source = array_source(images)
    for start in (0, 16):
        single = collect(train_batches(source, 8, seed=3, epoch=1, start=start))
        for count, replica_batch in ((2, 2), (1, 4), (2, 4), (4, 2)):
            steps = sharded_steps(source, 8, count, replica_batch, start)
            assert len(steps) == len(single) == (37 - start) // 8
            for parts, (position, L, ab) in zip(steps, single):
                assert all(p == position for p, _, _ in parts)  # every replica knows where the epoch is
                assert np.array_equal(np.concatenate([part_L for _, part_L, _ in parts]), L)
                assert np.array_equal(np.concatenate([part_ab for _, _, part_ab in parts]), ab)


def test_sharded_file_pipelines_read_disjoint_files_and_run_the_same_number_of_steps(tmp_path):
    folder = write_images(tmp_path / "imgs", 12, size=(16, 16))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    paths = np.array(sorted(str(p) for p in folder.iterdir()))
    source = file_source(paths, 16)
    shards = [collect(train_batches(source, 4, seed=0, epoch=0, augment=False, shard=(i, 2, 2)))
              for i in range(2)]
    # 13 files make 3 global batches of 4; the pipeline that met the broken file fills its slot
    # with one of its own images, so both run 3 steps and no worker waits for a missing batch.
    assert [len(s) for s in shards] == [3, 3]
    seen = [{L.tobytes() for _, batch_L, _ in s for L in batch_L} for s in shards]
    assert not seen[0] & seen[1]


def test_grayscale_arrays_are_dropped_and_counted_without_printing(capsys):
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    images[[2, 5, 7]] = images[[2, 5, 7], ..., :1]  # R = G = B
    source = array_source(images)
    assert len(source) == 7 and source.dropped == 3
    assert not np.all(source.images[..., :1] == source.images)
    kept = array_source(images, drop_grayscale=False)
    assert len(kept) == 10 and kept.dropped == 0
    assert capsys.readouterr() == ("", "")  # the library reports, train.py prints


def test_an_undecodable_file_is_skipped_and_named_once_across_epochs(tmp_path, caplog):
    folder = write_images(tmp_path, 6, size=(8, 8), ext="jpg")
    files = sorted(str(p) for p in folder.iterdir())
    for broken in (files[1], files[5]):  # the last one too: nothing follows it to show the gap
        data = open(broken, "rb").read()
        open(broken, "wb").write(data[:len(data) // 3])  # a valid header, then nothing
    source = file_source(files, 8, drop_grayscale=False)
    with caplog.at_level("WARNING", logger="data.pipeline"):
        for epoch in range(3):
            batches = collect(train_batches(source, 2, seed=0, epoch=epoch, augment=False))
            assert sum(len(L) for _, L, _ in batches) == 4  # the four good files, in full batches
            assert [p for p, _, _ in batches][-1] <= 6
        evaluated = list(eval_batches(source, 4))
    assert sum(len(rgb) for rgb, _, _ in evaluated) == 4
    named = [r.getMessage() for r in caplog.records if "not decodable" in r.getMessage()]
    assert sorted(named) == sorted(f"skipping {f}: not decodable (truncated or corrupt)" for f in (files[1], files[5]))
