"""The real CIFAR-10 of ../shared/datasets (skipped with a reason when it is absent)."""
import numpy as np
import pytest
from skimage.color import rgb2lab

from evaluation import scoring
import train
from data import cifar10
from data.datasets import load_source
from models import checkpoint as ckpt


@pytest.mark.slow
def test_no_colour_row_matches_the_independent_skimage_figures(real_cifar10):
    source = load_source("cifar10", real_cifar10.parent, "test", 32)
    assert len(source) == 10000
    # the metrics asserted here: SSIM and the 256x256 ones would upsample 10,000 images for nothing
    scores = scoring.evaluate(None, source, 500, predict=scoring.no_colour,
                              names=("accuracy", "mae", "psnr", "palette"))
    assert round(100 * scores["accuracy"], 2) == 24.63
    assert round(scores["mae"], 2) == 12.40
    assert round(scores["psnr"], 2) == 21.96
    # Painting grey shares with the truth's palette exactly its near-grey pixels (|a*|, |b*| < 5),
    # counted here with skimage from the raw test batch.
    lab = rgb2lab(cifar10.load_cifar10(real_cifar10.parent, "test", download=False))
    assert scores["palette"] == pytest.approx(np.mean((np.abs(lab[..., 1]) < 5) & (np.abs(lab[..., 2]) < 5)), abs=1e-3)


@pytest.mark.slow
def test_a_few_real_training_steps_on_cifar10(real_cifar10, tmp_path):
    run_dir = tmp_path / "run"
    assert train.main(["--dataset", "cifar10", "--dataset-path", str(real_cifar10.parent),
                       "--checkpoints-path", str(run_dir), "--batch-size", "16", "--max-steps", "3",
                       "--log-interval", "1", "--no-progress"]) == 0
    _, options, state = ckpt.read_metadata(run_dir / "step_00000003.h5")
    assert state["step"] == 3 and state["position"] == 48 and options["batch_size"] == 16
    losses = (run_dir / "log.csv").read_text().splitlines()
    assert len(losses) == 4
