"""Shared fixtures: a tiny photo folder, and where the real data of ../shared/datasets lives (or a
clear skip reason)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # on sys.path by pytest.ini's pythonpath

# CI sets COLORGAN_SHARED_DATASETS; a developer's checkout finds ../shared/datasets beside the repo.
SHARED = Path(os.environ.get("COLORGAN_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """A tiny photo folder (tests/helpers.py image_folder): train/ and test/ subfolders."""
    from tests.helpers import image_folder
    return image_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def shared_datasets():
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED} (set COLORGAN_SHARED_DATASETS)")
    return SHARED


@pytest.fixture(scope="session")
def real_cifar10(shared_datasets, tmp_path_factory):
    """The real CIFAR-10 in the official python layout, written once per test session."""
    script = shared_datasets / "cifar10" / "make_cifar10.py"
    if not script.is_file():
        pytest.skip(f"{script} not found")
    dest = tmp_path_factory.mktemp("cifar10")
    subprocess.run([sys.executable, str(script), str(dest)], check=True, capture_output=True)
    return dest / "cifar-10-batches-py"
