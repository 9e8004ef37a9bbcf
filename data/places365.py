"""Places365-Standard small images (256x256): the list of image files, cached beside the data.

Listing and checking 1.8 million files takes minutes, so the list is written to train.flist /
test.flist in the dataset folder (as the reference code does), with a sidecar .json recording the
mtime of every folder scanned. Adding or removing a file changes its folder's mtime, and adding a
folder changes its parent's, so stat'ing a few hundred folders tells whether the list is stale. The
sidecar also holds the list's SHA-256: a list damaged or edited by hand is rebuilt, not trusted.
"""
import hashlib
import json
import logging
import os
import time
from pathlib import Path

from data.errors import DatasetError
from data.image_files import keep_readable, scan_images
from util import atomic

log = logging.getLogger(__name__)

# Where each split lives, relative to the dataset folder, in the order tried: the official small
# images (data_256/<letter>/<category>/*.jpg, val_256/*.jpg), the "easy format"
# (places365_standard/{train,val}/<category>/*.jpg), and a folder that is places365_standard itself.
SPLIT_FOLDERS = {"train": ("data_256", "places365_standard/train", "train"),
                 "test": ("val_256", "places365_standard/val", "val")}
_CACHE_VERSION = 2  # 2: the sidecar holds the list's SHA-256
# A folder changed less than a timestamp tick before the scan can change again without its mtime
# moving ("racy", as git calls it). 2 s covers coarse filesystems (FAT); such folders are recorded
# as unknown, so the next run rescans once.
_RACY_NS = 2 * 10**9


def list_places365(root="datasets/places365", split="train") -> list[str]:
    """Sorted absolute paths of the split's images ("train" or "test"); images are never opened
    beyond their 16-byte header, and that only when the cached list is rebuilt."""
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"unknown Places365 split {split!r}; valid: {', '.join(SPLIT_FOLDERS)}")
    root = Path(os.path.abspath(root))
    folder = _split_folder(root, split)
    flist = root / f"{split}.flist"
    paths = _load_cache(root, flist, folder)
    if paths is None:
        paths, mtimes = _build(folder)
        _save_cache(root, flist, folder, paths, mtimes)
    return paths


def _split_folder(root: Path, split: str) -> Path:
    for rel in SPLIT_FOLDERS[split]:
        if (root / rel).is_dir():
            return root / rel
    raise DatasetError(f"Places365 {split} images not found in {root}: expected data_256/ and "
                       "val_256/ (Places365-Standard small images, 256x256) or "
                       "places365_standard/{train,val}/; download from http://places2.csail.mit.edu")


def _build(folder: Path) -> tuple[list[str], dict[str, int]]:
    """The split's image paths, and folder mtimes with the ones too recent to trust set to -1."""
    scan_start = time.time_ns()
    paths, mtimes = scan_images(folder)
    mtimes = {d: -1 if m >= scan_start - _RACY_NS else m for d, m in mtimes.items()}
    paths, n_bad = keep_readable(paths)
    if n_bad:
        log.warning("skipped %d of %d files in %s that are not images", n_bad, n_bad + len(paths),
                    folder)
    if not paths:
        raise DatasetError(f"no images in {folder}: put the Places365-Standard .jpg files there "
                           "(download from http://places2.csail.mit.edu)")
    return paths, mtimes


def _sidecar(flist: Path) -> Path:
    return flist.with_name(flist.name + ".json")


def _load_cache(root: Path, flist: Path, folder: Path) -> list[str] | None:
    """The cached paths, or None when there is no cache or any scanned folder changed since."""
    try:
        meta = json.loads(_sidecar(flist).read_text())
        if meta.get("version") != _CACHE_VERSION or meta.get("folder") != _rel(folder, root):
            return None
        for rel, mtime in meta["mtimes"].items():
            if os.stat(root / rel).st_mtime_ns != mtime:
                return None
        data = flist.read_bytes()
    except (OSError, ValueError, KeyError, AttributeError):  # absent, removed folder or damaged
        return None
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        log.warning("%s is not the list that was cached (damaged or edited): listing the folder again", flist)
        return None
    lines = [os.fsdecode(line) for line in data.split(b"\n")[:-1]]  # every line ends in \n
    prefix = os.path.join(root, "")
    return [prefix + line for line in lines]


def _save_cache(root: Path, flist: Path, folder: Path, paths, mtimes):
    """Write the list and its sidecar atomically; on a read-only dataset folder just say so."""
    data = b"".join(os.fsencode(line) + b"\n" for line in _relative(paths, root))  # a name's own bytes
    meta = {"version": _CACHE_VERSION, "folder": _rel(folder, root), "count": len(paths),
            "sha256": hashlib.sha256(data).hexdigest(), "mtimes": {_rel(d, root): m for d, m in mtimes.items()}}
    try:
        atomic.write_bytes(flist, data)
        atomic.write_text(_sidecar(flist), json.dumps(meta, indent=0))
    except OSError as e:
        log.warning("cannot cache the file list as %s (%s): it will be rebuilt on every run",
                    flist, e.strerror or e)


def _relative(paths, root: Path) -> list[str]:
    """Paths under root made relative with / separators; string slicing, as there are 1.8 M."""
    prefix = os.path.join(root, "")
    assert all(p.startswith(prefix) for p in paths), "scan_images returned a path outside root"
    return [p[len(prefix):].replace(os.sep, "/") for p in paths]


def _rel(path, root: Path) -> str:
    """path relative to root with / separators, so the dataset folder can move."""
    return Path(os.path.relpath(path, root)).as_posix()
