"""The dataset readers: image files, CIFAR-10 batches and download, Places365 lists, image folders."""
import hashlib
import http.server
import io
import logging
import os
import pickle
import re
import shutil
import tarfile
import threading
import time
from functools import partial

import numpy as np
import pytest
from PIL import Image

from data import cifar10, places365
from data.cifar10 import load_cifar10, locate_cifar10
from data.errors import DatasetError
from data.folder import list_folder
from data.image_files import IMAGE_EXTENSIONS, find_images, keep_readable, sniff_image
from data.places365 import list_places365

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def write_image(path, color=(10, 200, 30), fmt=None, size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path, format=fmt)
    return path


def write_bytes(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def age(root, seconds=3600):
    """Make every folder under root look last changed an hour ago, as a real dataset would."""
    past = time.time() - seconds
    for folder, _, _ in os.walk(root):
        os.utime(folder, (past, past))


# --- image files -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,kind", [("JPEG", "jpeg"), ("PNG", "png"), ("BMP", "bmp"),
                                      ("WEBP", "webp"), ("GIF", "gif")])
def test_sniff_image_names_the_format_from_the_header(tmp_path, fmt, kind):
    # A misleading extension does not matter: only the bytes count.
    assert sniff_image(write_image(tmp_path / "picture.dat", fmt=fmt)) == kind


def test_sniff_image_rejects_what_is_not_an_image(tmp_path):
    assert sniff_image(write_bytes(tmp_path / "empty.jpg", b"")) is None
    assert sniff_image(write_bytes(tmp_path / "text.png", b"hello, world\n" * 4)) is None
    assert sniff_image(write_bytes(tmp_path / "bm.bmp", b"BMW drivers wave to each other")) is None
    assert sniff_image(write_bytes(tmp_path / "short.jpg", b"\xff\xd8")) is None
    assert sniff_image(tmp_path / "missing.jpg") is None
    assert sniff_image(tmp_path) is None  # a folder


def test_find_images_any_case_nested_sorted_absolute(tmp_path):
    for name in ["b.JPG", "a.jpeg", "sub/deeper/c.Png", "sub/d.bmp", "e.WebP", "f.gif", "g.txt",
                 ".hidden.jpg", ".cache/h.jpg"]:
        write_bytes(tmp_path / name, b"x")
    found = find_images(tmp_path)
    assert found == sorted(str(tmp_path / n) for n in
                           ["b.JPG", "a.jpeg", "sub/deeper/c.Png", "sub/d.bmp", "e.WebP"])
    assert all(os.path.isabs(p) and isinstance(p, str) for p in found)
    assert find_images(tmp_path, recursive=False) == sorted(str(tmp_path / n) for n in
                                                            ["b.JPG", "a.jpeg", "e.WebP"])
    assert IMAGE_EXTENSIONS == (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def test_keep_readable_drops_and_counts_non_images_with_one_line_each(tmp_path, caplog):
    good = [str(write_image(tmp_path / "ok.jpg")), str(write_image(tmp_path / "ok.png"))]
    bad = [str(write_bytes(tmp_path / "x.jpg", np.random.default_rng(0).bytes(500))),
           str(write_bytes(tmp_path / "empty.png", b"")), str(tmp_path / "gone.jpg")]
    with caplog.at_level(logging.WARNING):
        kept, n_bad = keep_readable(good + bad)
    assert kept == good and n_bad == 3
    assert len(caplog.records) == 3
    for path, record in zip(bad, caplog.records):
        assert path in record.getMessage() and "\n" not in record.getMessage()
    assert "empty" in caplog.records[1].getMessage()


# --- CIFAR-10 ----------------------------------------------------------------------------------

def cifar_batch(n, seed):
    """A batch in the official format: bytes keys, uint8 N x 3072 rows of 1024 R, G, B."""
    rng = np.random.default_rng(seed)
    return {b"batch_label": f"batch {seed}".encode(), b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)]}


def write_cifar(folder, n=10, names=BATCHES):
    """Pickle small batches into folder (protocol 2, like the official files); returns their data."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for seed, name in enumerate(names):
        batch = cifar_batch(n, seed)
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        data[name] = batch[b"data"]
    return data


def as_images(rows):
    return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def write_archive(dest, source_folder, arcname="cifar-10-batches-py"):
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(source_folder, arcname=arcname)
    return dest


def test_cifar10_pixel_orientation(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, names=["test_batch"])
    rows = np.zeros((3, 3072), np.uint8)
    rows[1, 0 * 32 + 1] = 200         # R plane, row 0, column 1
    rows[1, 1024 + 1 * 32 + 0] = 100  # G plane, row 1, column 0
    rows[1, 2048 + 31 * 32 + 30] = 50  # B plane, row 31, column 30
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [0, 1, 2], b"data": rows,
             b"filenames": [b"a.png", b"b.png", b"c.png"]}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))

    images = load_cifar10(tmp_path, "test", download=False)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert images[1, 0, 1].tolist() == [200, 0, 0]
    assert images[1, 1, 0].tolist() == [0, 100, 0]
    assert images[1, 31, 30].tolist() == [0, 0, 50]
    assert images.sum() == 350


def test_cifar10_train_is_the_five_batches_in_order(tmp_path):
    data = write_cifar(tmp_path / "cifar-10-batches-py")
    train = load_cifar10(tmp_path, "train", download=False)
    assert train.shape == (50, 32, 32, 3) and train.dtype == np.uint8
    np.testing.assert_array_equal(train, as_images(np.concatenate([data[b] for b in BATCHES[:5]])))
    np.testing.assert_array_equal(load_cifar10(tmp_path, "test", download=False),
                                  as_images(data["test_batch"]))
    with pytest.raises(ValueError, match="train, test"):
        load_cifar10(tmp_path, "validation")


@pytest.mark.parametrize("placement", ["extracted folder", "batch files directly", "tar.gz"])
def test_cifar10_accepts_the_three_placements(tmp_path, placement):
    root = tmp_path / "cifar10"
    if placement == "extracted folder":
        data = write_cifar(root / "cifar-10-batches-py")
    elif placement == "batch files directly":
        data = write_cifar(root)
    else:
        data = write_cifar(tmp_path / "staging" / "cifar-10-batches-py")
        write_archive(root / "cifar-10-python.tar.gz", tmp_path / "staging" / "cifar-10-batches-py")
    expected = root if placement == "batch files directly" else root / "cifar-10-batches-py"

    assert locate_cifar10(root, download=False) == expected
    np.testing.assert_array_equal(load_cifar10(root, "test", download=False),
                                  as_images(data["test_batch"]))
    assert not [p for p in os.listdir(root) if p.startswith(".extract")]  # temp folder removed


def test_cifar10_archive_without_top_folder_and_archive_path(tmp_path):
    data = write_cifar(tmp_path / "staging", names=["test_batch"])
    (tmp_path / "cifar10").mkdir()
    archive = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "staging" / "test_batch", arcname="test_batch")
    # Passing the archive itself is accepted too.
    np.testing.assert_array_equal(load_cifar10(archive, "test", download=False),
                                  as_images(data["test_batch"]))
    assert (tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()


def test_cifar10_archive_members_cannot_escape(tmp_path):
    root = tmp_path / "cifar10"
    root.mkdir()
    payload = b"not a batch"
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        member = tarfile.TarInfo("../escaped_batch")
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))
    with pytest.raises(DatasetError) as error:
        locate_cifar10(root, download=False)
    assert "cifar-10-python.tar.gz" in one_line(error)
    assert not (tmp_path / "escaped_batch").exists()
    assert not [p for p in os.listdir(root) if p.startswith(".extract")]


def test_cifar10_corrupt_archive_and_empty_archive(tmp_path):
    root = tmp_path / "cifar10"
    write_bytes(root / "cifar-10-python.tar.gz", b"\x1f\x8b\x08 truncated")
    with pytest.raises(DatasetError, match="cannot extract"):
        locate_cifar10(root, download=False)
    write_archive(root / "cifar-10-python.tar.gz", write_bytes(tmp_path / "x" / "readme", b"hi"))
    with pytest.raises(DatasetError, match="holds no CIFAR-10 batch files"):
        locate_cifar10(root, download=False)


def test_cifar10_missing_or_corrupt_batch_names_the_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, names=["test_batch"])
    with pytest.raises(DatasetError) as error:
        load_cifar10(tmp_path, "train", download=False)
    assert "data_batch_1" in one_line(error)

    write_bytes(folder / "test_batch", np.random.default_rng(0).bytes(3000))
    with pytest.raises(DatasetError) as error:
        load_cifar10(tmp_path, "test", download=False)
    assert str(folder / "test_batch") in one_line(error)

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8)}))
    with pytest.raises(DatasetError, match="N x 3072"):
        load_cifar10(tmp_path, "test", download=False)


class RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar10_batch_pickle_cannot_run_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_bytes(folder / "test_batch", pickle.dumps({b"data": RunsCode()}, protocol=2))
    with pytest.raises(DatasetError, match="posix.getcwd|os.getcwd|nt.getcwd"):
        load_cifar10(tmp_path, "test", download=False)


def test_cifar10_not_found_without_download(tmp_path):
    with pytest.raises(DatasetError) as error:
        locate_cifar10(tmp_path / "nothing", download=False)
    message = one_line(error)
    assert "cifar-10-python.tar.gz" in message and "cifar-10-batches-py" in message


@pytest.fixture
def served_archive(tmp_path):
    """A small CIFAR-10 archive served by a local HTTP server: (url, md5, test rows)."""
    data = write_cifar(tmp_path / "staging" / "cifar-10-batches-py", names=["test_batch"])
    archive = write_archive(tmp_path / "server" / "cifar-10-python.tar.gz",
                            tmp_path / "staging" / "cifar-10-batches-py")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Quiet, directory=str(archive.parent)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
        yield url, hashlib.md5(archive.read_bytes()).hexdigest(), data["test_batch"]
    finally:
        server.shutdown()
        server.server_close()


def test_cifar10_download_over_http(tmp_path, served_archive, monkeypatch):
    url, md5, rows = served_archive
    monkeypatch.setattr(cifar10, "CIFAR10_URL", url)
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5)
    root = tmp_path / "datasets" / "cifar10"  # does not exist yet
    np.testing.assert_array_equal(load_cifar10(root, "test"), as_images(rows))
    assert sorted(os.listdir(root)) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


def test_cifar10_download_checksum_mismatch_leaves_nothing(tmp_path, served_archive, monkeypatch):
    url, md5, _ = served_archive
    archive = tmp_path / "server" / "cifar-10-python.tar.gz"
    monkeypatch.setattr(cifar10, "CIFAR10_URL", archive.as_uri())  # file:// works as well
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", "0" * 32)
    root = tmp_path / "cifar10"
    with pytest.raises(DatasetError) as error:
        load_cifar10(root, "test")
    assert md5 in one_line(error) and "0" * 32 in one_line(error)
    assert os.listdir(root) == []


def test_cifar10_offline_names_the_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10, "CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    root = tmp_path / "cifar10"
    with pytest.raises(DatasetError) as error:
        load_cifar10(root, "test")
    message = one_line(error)
    assert "download failed" in message and "cifar-10-python.tar.gz" in message
    assert str(root) in message
    assert not root.exists()  # the folder made for the download is removed again


@pytest.mark.slow  # the fixture writes all 60,000 images once per session (about 12 s)
def test_real_cifar10_shapes(real_cifar10):
    test = load_cifar10(real_cifar10.parent, "test", download=False)
    assert test.shape == (10000, 32, 32, 3) and test.dtype == np.uint8
    train = load_cifar10(real_cifar10.parent, "train", download=False)
    assert train.shape == (50000, 32, 32, 3) and train.dtype == np.uint8
    assert 60 < train.mean() < 200 and train.std() > 30  # real photographs, not zeros


# --- Places365 ---------------------------------------------------------------------------------

def official_places(root):
    train = [root / "data_256/a/airfield/00000001.jpg", root / "data_256/a/airfield/00000002.jpg",
             root / "data_256/a/apartment_building/outdoor/00000001.jpg",
             root / "data_256/b/beach/00000001.jpg"]
    test = [root / "val_256/Places365_val_00000001.jpg", root / "val_256/Places365_val_00000002.jpg"]
    for i, path in enumerate(train + test):
        write_image(path, color=(i * 20, 100, 200))
    return sorted(map(str, train)), sorted(map(str, test))


def test_places365_official_layout(tmp_path, caplog):
    train, test = official_places(tmp_path)
    write_bytes(tmp_path / "data_256/b/beach/broken.jpg", b"<html>404</html>")
    write_bytes(tmp_path / "data_256/b/beach/notes.txt", b"not an image name: ignored")
    with caplog.at_level(logging.WARNING):
        assert list_places365(tmp_path, "train") == train
    assert "broken.jpg" in caplog.text and "notes.txt" not in caplog.text
    assert list_places365(tmp_path, "test") == test


def test_places365_easy_format_from_parent_or_itself(tmp_path):
    base = tmp_path / "places365_standard"
    train = [write_image(base / "train/airfield/1.jpg"), write_image(base / "train/beach/2.jpg")]
    test = [write_image(base / "val/airfield/3.jpg")]
    for root in (tmp_path, base):
        assert list_places365(root, "train") == sorted(map(str, train))
        assert list_places365(root, "test") == sorted(map(str, test))


def test_places365_missing_names_the_layout(tmp_path):
    with pytest.raises(DatasetError) as error:
        list_places365(tmp_path / "nowhere", "train")
    message = one_line(error)
    assert "data_256/" in message and "val_256/" in message and "places365_standard" in message
    (tmp_path / "data_256").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        list_places365(tmp_path, "train")


def test_places365_cache_written_reused_and_rebuilt(tmp_path, monkeypatch):
    train, _ = official_places(tmp_path)
    age(tmp_path)
    assert list_places365(tmp_path, "train") == train
    flist = (tmp_path / "train.flist").read_text().splitlines()
    assert flist == [os.path.relpath(p, tmp_path) for p in train]  # relative: the folder can move
    assert (tmp_path / "train.flist.json").is_file()

    scans = []
    real_scan = places365.scan_images
    monkeypatch.setattr(places365, "scan_images", lambda *a: scans.append(a) or real_scan(*a))
    assert list_places365(tmp_path, "train") == train
    assert scans == []  # served from the cache

    added = write_image(tmp_path / "data_256/b/beach/00000002.jpg")
    assert list_places365(tmp_path, "train") == sorted(train + [str(added)])
    assert len(scans) == 1
    assert len((tmp_path / "train.flist").read_text().splitlines()) == 5

    age(tmp_path)
    list_places365(tmp_path, "train")
    new_category = write_image(tmp_path / "data_256/c/canyon/00000001.jpg")  # a new subfolder
    os.utime(new_category.parent, (1, 1))  # only the new folders' parent can tell
    assert str(new_category) in list_places365(tmp_path, "train")
    assert len(scans) == 3


def test_places365_cache_survives_a_move(tmp_path):
    train, _ = official_places(tmp_path / "a")
    age(tmp_path / "a")
    list_places365(tmp_path / "a", "train")
    os.rename(tmp_path / "a", tmp_path / "b")
    moved = [p.replace(str(tmp_path / "a"), str(tmp_path / "b")) for p in train]
    assert list_places365(tmp_path / "b", "train") == moved


def test_places365_fresh_folders_are_rescanned_once(tmp_path, monkeypatch):
    official_places(tmp_path)  # folders modified just now: their mtimes are not trusted yet
    scans = []
    real_scan = places365.scan_images
    monkeypatch.setattr(places365, "scan_images", lambda *a: scans.append(a) or real_scan(*a))
    list_places365(tmp_path, "test")
    list_places365(tmp_path, "test")
    assert len(scans) == 2


def test_places365_read_only_folder_works_without_cache(tmp_path, monkeypatch, caplog):
    train, _ = official_places(tmp_path)

    def refuse(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(places365.atomic, "write_text", refuse)
    monkeypatch.setattr(places365.atomic, "write_bytes", refuse)
    with caplog.at_level(logging.WARNING):
        assert list_places365(tmp_path, "train") == train
    assert "rebuilt on every run" in caplog.text
    assert not (tmp_path / "train.flist").exists()


def test_places365_real_photographs_in_official_layout(tmp_path, shared_datasets):
    sample = sorted((shared_datasets / "places365-sample").rglob("places2_256_freeform/**/*.jpg"))
    if len(sample) < 5:
        pytest.skip("fewer than 5 Places365 .jpg files in the shared sample")
    copies = []
    for src, folder in zip(sample, ["data_256/a/abbey", "data_256/a/abbey", "data_256/b/beach",
                                    "val_256", "val_256"]):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        copies.append(shutil.copy(src, tmp_path / folder / src.name))
    train = list_places365(tmp_path, "train")
    test = list_places365(tmp_path, "test")
    assert train == sorted(map(str, copies[:3])) and test == sorted(map(str, copies[3:]))
    for path in train + test:
        assert sniff_image(path) == "jpeg"
        assert Image.open(path).size == (256, 256)


# --- any folder of images ----------------------------------------------------------------------

def test_folder_with_train_and_test_subfolders(tmp_path):
    train = [write_image(tmp_path / "train/a.jpg"), write_image(tmp_path / "train/cats/b.PNG")]
    test = [write_image(tmp_path / "test/c.JPEG")]
    write_image(tmp_path / "val/ignored.jpg")  # test/ wins over val/
    assert list_folder(tmp_path, "train") == sorted(map(str, train))
    assert list_folder(tmp_path, "test") == sorted(map(str, test))
    shutil.rmtree(tmp_path / "test")
    assert list_folder(tmp_path, "test") == [str(tmp_path / "val/ignored.jpg")]
    shutil.rmtree(tmp_path / "val")
    with pytest.raises(DatasetError) as error:
        list_folder(tmp_path, "test")
    assert "test" in one_line(error)


def test_folder_held_out_split_is_deterministic_and_stable(tmp_path, caplog):
    names = [f"{'nested/deeper/' if i % 3 == 0 else ''}img{i:03d}.{['jpg', 'JPG', 'Png', 'jpeg'][i % 4]}"
             for i in range(40)]
    images = {str(write_image(tmp_path / name, fmt="JPEG")) for name in names}
    write_bytes(tmp_path / "x.jpg", np.random.default_rng(1).bytes(2000))  # corrupt
    write_bytes(tmp_path / "y.png", b"just some text\n")  # text named like an image
    with caplog.at_level(logging.WARNING):
        train = list_folder(tmp_path, "train")
        test = list_folder(tmp_path, "test", test_fraction=0.1)
    assert set(train) | set(test) == images and not set(train) & set(test)
    assert train == sorted(train) and test == sorted(test)
    assert 1 <= len(test) <= 12
    # Each split checks its own files: each bad file is named once, by the split it falls in.
    assert caplog.text.count("/x.jpg") == 1 and caplog.text.count("/y.png") == 1
    assert sum(map(int, re.findall(r"skipped (\d+) of \d+ files of its (?:train|test) split", caplog.text))) == 2

    assert list_folder(tmp_path, "test") == test  # same answer every call
    for i in range(40, 80):
        write_image(tmp_path / f"more/img{i:03d}.jpg")
    assert set(test) <= set(list_folder(tmp_path, "test"))  # adding files moves nobody
    assert set(train) <= set(list_folder(tmp_path, "train"))


def test_folder_tiny_folders(tmp_path):
    write_image(tmp_path / "only.jpg")
    assert list_folder(tmp_path, "train") == [str(tmp_path / "only.jpg")]
    with pytest.raises(DatasetError, match="no test images"):
        list_folder(tmp_path, "test")
    write_image(tmp_path / "second.jpg")
    train, test = list_folder(tmp_path, "train"), list_folder(tmp_path, "test")
    assert len(train) == len(test) == 1 and train != test


def test_folder_missing_or_without_images(tmp_path):
    with pytest.raises(DatasetError) as error:
        list_folder(tmp_path / "nowhere", "train")
    message = one_line(error)
    assert str(tmp_path / "nowhere") in message and ".jpg" in message and ".webp" in message
    write_bytes(tmp_path / "readme.txt", b"no images here")
    with pytest.raises(DatasetError) as error:
        list_folder(tmp_path, "train")
    assert ".png" in one_line(error)
