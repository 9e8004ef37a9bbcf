"""Any folder of images as a dataset: train/ and test/ (or val/) subfolders, or a held-out fraction."""
import hashlib
import logging
import os
from pathlib import Path

from data.errors import DatasetError
from data.image_files import IMAGE_EXTENSIONS, find_images, keep_readable

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
DEFAULT_TEST_FRACTION = 0.1
_EXTENSIONS = ", ".join(IMAGE_EXTENSIONS)


def folder_paths(path) -> list[str]:
    """The folders of a --dataset-path: one, or several joined by os.pathsep ("a:b" on Linux and
    macOS, "a;b" on Windows, as in PATH), which train as one set and are scored apart."""
    parts = [part for part in str(path).split(os.pathsep) if part]
    if not parts:
        raise DatasetError("the dataset path is empty: name an image folder")
    return [os.path.abspath(os.path.expanduser(part)) for part in parts]  # the shell expands only the first ~


def list_folders(path, split="train", test_fraction=DEFAULT_TEST_FRACTION) -> list[str]:
    """list_folder over every folder of `path` (folder_paths), concatenated: one training set of
    several folders, each split as it would be alone."""
    return [image for root in folder_paths(path) for image in list_folder(root, split, test_fraction)]


def list_folder(root, split="train", test_fraction=DEFAULT_TEST_FRACTION) -> list[str]:
    """Sorted absolute paths of the split's images ("train" or "test") under root, any depth.

    With root/train/, train is its images and test those of root/test/ (else root/val/).
    Otherwise an image is held out for test when the hash of its path relative to root falls
    below test_fraction, so adding files never moves the others (tiny folders aside: test gets at
    least one image and train keeps at least one).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise DatasetError(f"image folder {root} not found: create it and put images "
                           f"({_EXTENSIONS}) in it, or in its train/ and test/ subfolders")
    if (root / "train").is_dir():
        folder = _split_subfolder(root, split)
        return _readable_images(find_images(folder), folder)
    # Split by name, then check each split's own files: a bad file is named once, by its split.
    images = find_images(root)
    train, test = _hash_split(images, root, test_fraction)
    if split == "test" and not test:
        raise DatasetError(f"no test images in {root} ({len(images)} images, test_fraction "
                           f"{test_fraction}): add images, or put test images in {root / 'test'} "
                           f"and the rest in {root / 'train'}")
    return _readable_images(train if split == "train" else test, root, split)


def _split_subfolder(root: Path, split: str) -> Path:
    names = ("train",) if split == "train" else ("test", "val")
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DatasetError(f"{root} has train/ but no test/ or val/ folder: put the test images in "
                       f"{root / 'test'}")


def _readable_images(found, folder: Path, split=None) -> list[str]:
    paths, n_bad = keep_readable(found)
    which = f" of its {split} split" if split else ""
    if n_bad:
        log.warning("skipped %d of %d files%s in %s that are not images", n_bad, n_bad + len(paths), which,
                    folder)
    if not paths:
        raise DatasetError(f"no images{which} in {folder}: put image files ({_EXTENSIONS}, any case) "
                           "there, in any subfolders")
    return paths


def _hash_split(paths, root: Path, test_fraction) -> tuple[list[str], list[str]]:
    """(train, test): test holds the images whose path hash is below test_fraction, and at least
    one image (but never all) when test_fraction > 0 and there are two or more images."""
    hashes = {p: _unit_hash(os.path.relpath(p, root)) for p in paths}
    ranked = sorted(paths, key=hashes.get)
    n_test = sum(h < test_fraction for h in hashes.values())
    if test_fraction > 0 and len(paths) >= 2:
        n_test = min(max(n_test, 1), len(paths) - 1)
    return sorted(ranked[n_test:]), sorted(ranked[:n_test])


def _unit_hash(relpath: str) -> float:
    """A stable number in [0, 1) for a path (md5: unlike hash(), the same in every process)."""
    digest = hashlib.md5(os.fsencode(Path(relpath).as_posix())).digest()  # a name need not be UTF-8
    return int.from_bytes(digest[:8], "big") / 2**64
