"""CIFAR-10, "python version": find, download or extract the pickled batches, read them as uint8 RGB."""
import hashlib
import http.client
import os
import pickle
import tarfile
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data.errors import DatasetError

# The official download (https://www.cs.toronto.edu/~kriz/cifar.html) and the md5 published there.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
SPLITS = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_ALL_BATCHES = SPLITS["train"] + SPLITS["test"]


def locate_cifar10(path="datasets/cifar10", download=True) -> Path:
    """The folder holding the batch files: path/cifar-10-batches-py/, path itself, or extracted from
    path/cifar-10-python.tar.gz, which is downloaded first when absent and download is True."""
    path = Path(path)
    if path.is_file() and path.name == ARCHIVE:  # the archive itself was passed
        path = path.parent
    found = _batch_folder(path)
    if found is not None:
        return found
    archive = path / ARCHIVE
    if not archive.is_file():
        if not download:
            raise DatasetError(f"CIFAR-10 not found in {path}: put {ARCHIVE} or the extracted "
                               f"{FOLDER}/ folder there (from {CIFAR10_URL})")
        _download(archive)
    return _extract(archive, path)


def load_cifar10(path="datasets/cifar10", split="train", download=True) -> np.ndarray:
    """The images of split ("train": 50,000, "test": 10,000) as uint8 (N, 32, 32, 3) RGB."""
    if split not in SPLITS:
        raise ValueError(f"unknown CIFAR-10 split {split!r}; valid: {', '.join(SPLITS)}")
    folder = locate_cifar10(path, download)
    return np.concatenate([_read_batch(folder / name) for name in SPLITS[split]])


def _batch_folder(path: Path) -> Path | None:
    for folder in (path / FOLDER, path):
        if any((folder / name).is_file() for name in _ALL_BATCHES):
            return folder
    return None


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch holds: a pickle can otherwise run arbitrary code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # Python 3 writes bytes this way in protocol 2

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def _read_batch(file: Path) -> np.ndarray:
    """One batch file as uint8 (N, 32, 32, 3): rows are 1024 R, 1024 G, 1024 B, each row-major 32x32."""
    if not file.is_file():
        raise DatasetError(f"{file} is missing: put the complete {FOLDER}/ folder (data_batch_1..5, "
                           f"test_batch) from the official {ARCHIVE} in {file.parent.parent}")
    try:
        with open(file, "rb") as f:
            # The official files are Python 2 pickles: encoding="bytes" keeps their str keys as bytes.
            data = _BatchUnpickler(f, encoding="bytes").load()[b"data"]
    except Exception as e:  # a damaged pickle can raise almost any exception type
        raise DatasetError(f"{file} is not a readable CIFAR-10 batch ({type(e).__name__}: {e}): "
                           f"replace it with the one from the official {ARCHIVE}") from e
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3072):
        raise DatasetError(f"{file} does not hold N x 3072 uint8 pixels: replace it with the one "
                           f"from the official {ARCHIVE}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _download(archive: Path):
    """Download CIFAR10_URL to archive via a .part file, checking CIFAR10_MD5; nothing left on failure."""
    where = archive.parent
    part = archive.with_name(archive.name + ".part")
    created = [d for d in (where, *where.parents) if not d.exists()]  # removed again on failure
    try:
        where.mkdir(parents=True, exist_ok=True)
        md5 = _fetch(CIFAR10_URL, part)
    except BaseException as e:  # e.g. no network, Ctrl-C: leave no partial file, no new folder
        part.unlink(missing_ok=True)
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break
        if isinstance(e, (OSError, ValueError, http.client.HTTPException)):  # URLError is an OSError
            raise DatasetError(f"CIFAR-10 not found in {where} and the download failed ({e}): "
                               f"put {ARCHIVE} or the extracted {FOLDER}/ folder there") from e
        raise
    if md5 != CIFAR10_MD5:
        part.unlink()
        raise DatasetError(f"the downloaded {ARCHIVE} has md5 {md5}, expected {CIFAR10_MD5}: retry, "
                           f"or put {ARCHIVE} or the extracted {FOLDER}/ folder in {where}")
    os.replace(part, archive)


def _fetch(url, dest: Path) -> str:
    """Stream url into dest with a progress bar; returns the md5 of what was written."""
    md5 = hashlib.md5()
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
        size = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=size, unit="B", unit_scale=True, desc=f"downloading {dest.name[:-5]}") as bar:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                md5.update(chunk)
                bar.update(len(chunk))
    return md5.hexdigest()


def _extract(archive: Path, dest: Path) -> Path:
    """Extract archive into dest/cifar-10-batches-py/ and return that folder.

    Extracting into a temporary folder first means an interrupted extraction never leaves a
    half-written batch folder that would later be mistaken for a complete one. No md5 check here:
    a local archive may be a legitimate repackaging.
    """
    try:
        # tmp itself is moved into place when the archive has no top folder: ignore its absence.
        with tempfile.TemporaryDirectory(prefix=".extract-", dir=dest,
                                         ignore_cleanup_errors=True) as tmp:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")  # refuses members that would land outside tmp
            found = _batch_folder(Path(tmp))
            if found is None:
                raise DatasetError(f"{archive} holds no CIFAR-10 batch files: replace it with the "
                                   f"official {ARCHIVE} from {CIFAR10_URL}")
            os.replace(found, dest / FOLDER)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"cannot extract {archive} ({e}): replace it with the official {ARCHIVE}, "
                           f"or put the extracted {FOLDER}/ folder in {dest}") from e
    return dest / FOLDER
