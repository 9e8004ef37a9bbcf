"""Shared fixtures: a tiny photo folder, a tiny trained checkpoint, and where the real data of
../shared/datasets lives (or a clear skip reason)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # on sys.path by pytest.ini's pythonpath

# pytest-xdist's workers share the cores: each worker's TensorFlow (and the scripts it starts) computes
# on its share of them, not on all of them, so that no core runs two spinning thread pools (measured:
# a sixth less CPU time for tests/test_models.py). Set before TensorFlow is imported; a value the
# user set wins. The inter-op pool, where collective ops wait for each other, keeps its default.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(_share))

# CI sets COLORGAN_SHARED_DATASETS; a developer's checkout finds ../shared/datasets beside the repo.
SHARED = Path(os.environ.get("COLORGAN_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """A tiny photo folder (tests/helpers.py image_folder): train/ and test/ subfolders."""
    from tests.helpers import image_folder
    return image_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def checkpoint(request, tmp_path_factory):
    """A tiny GAN trained 2 steps, in a run folder of the test module's own (serve.py writes its
    Turing test there), whose options name a folder of 4 training and 10 test photos. A module that
    sets CHECKPOINT_MODEL = "unet" gets a U-Net trained 3 steps (BatchNorm's statistics moved)."""
    from tests.helpers import image_folder, tiny_checkpoint
    root = tmp_path_factory.mktemp("checkpoint")
    images = image_folder(root / "images", train=4, test=10)
    model = getattr(request.module, "CHECKPOINT_MODEL", "gan")
    steps = 3 if model == "unet" else 2
    return tiny_checkpoint(root / "run" / f"step_{steps:08d}.h5", model, steps, {"dataset_path": str(images)})


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
