"""Dataset names -> image sources for a split ("train" or "test"). TensorFlow (data/pipeline.py) is
imported when a source is made, not here: options.py reads the names for `--help`."""
import os
from pathlib import Path

from data import cifar10, folder, places365
from data.errors import DatasetError
from data.limits import DEFAULT_MEGAPIXELS

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # older runs stored their dataset relative to it


def _cifar10(path, split, image_size, download=False, test_fraction=None, max_megapixels=None):
    # Grayscale images are dropped from training only: the test split stays whole, as in the
    # reference figures (no colour: 24.63 %, MAE 12.40 over all 10,000 test images).
    from data.pipeline import array_source
    return array_source(cifar10.load_cifar10(path, split, download), drop_grayscale=split == "train")


def _places365(path, split, image_size, download=False, test_fraction=None, max_megapixels=DEFAULT_MEGAPIXELS):
    from data.pipeline import file_source
    return file_source(places365.list_places365(path, split), image_size, split == "train", max_megapixels)


def _folder(path, split, image_size, download=False, test_fraction=None, max_megapixels=DEFAULT_MEGAPIXELS):
    from data.pipeline import file_source
    fraction = folder.DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    return file_source(folder.list_folders(path, split, fraction), image_size, split == "train", max_megapixels)


DATASETS = {"cifar10": _cifar10, "places365": _places365, "folder": _folder}


def load_source(dataset, path, split, image_size, download=False, test_fraction=None,
                max_megapixels=DEFAULT_MEGAPIXELS):
    """download: CIFAR-10 only, fetched when absent (train.py; test.py never downloads).
    test_fraction: folders without test/ only, the share held out for testing (default 0.1).
    max_megapixels: image files only, the pixel limit (data/limits.py)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")
    for part in folder.folder_paths(path) if dataset == "folder" else [path]:
        if Path(part).exists() and not Path(part).is_dir() and not (dataset == "cifar10" and Path(part).name == cifar10.ARCHIVE):
            raise DatasetError(f"dataset path {part} is a file, not a folder")
    return DATASETS[dataset](path, split, image_size, download=download, test_fraction=test_fraction,
                             max_megapixels=max_megapixels)


def stored_dataset(options, checkpoint):
    """The dataset a checkpoint names, checked: one this code reads (DATASETS)."""
    name = options.get("dataset")
    if name not in DATASETS:
        raise DatasetError(f"{checkpoint} names the dataset {name!r}, which this code does not read "
                           f"({', '.join(DATASETS)}): pass --dataset and --dataset-path")
    return name


def stored_dataset_path(options, checkpoint):
    """The checkpoint's dataset folder (or folders, data/folder.py): stored absolute, or (older
    runs) relative to where train.py ran, which was most likely the project's root."""
    if not isinstance(options.get("dataset_path"), str) or not options["dataset_path"]:
        raise DatasetError(f"{checkpoint} does not say where its dataset is: pass --dataset-path")
    found = []
    for stored in map(Path, options["dataset_path"].split(os.pathsep)):
        candidate = next((c for c in (stored, PROJECT_ROOT / stored) if c.exists()), None)
        if candidate is None:
            raise DatasetError(f"the dataset of {checkpoint} is not at {stored} (where it was trained): "
                               f"pass --dataset-path")
        found.append(str(candidate))
    return os.pathsep.join(found)
