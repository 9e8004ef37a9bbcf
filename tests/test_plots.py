"""evaluation/plots.py: the quality curves and the colour trade-off, drawn from training logs."""
import csv

import numpy as np
from PIL import Image

from evaluation import plots


def test_the_quality_curves_are_drawn_from_the_logs(tmp_path):
    def write(path, maes, colour=False):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", "epoch", "seconds", "accuracy", "mae"] + ["colourfulness", "palette"] * colour)
            for i, mae in enumerate(maes):
                writer.writerow([100 * (i + 1), i + 1, 600 * (i + 1), 0.1 + 0.02 * i, mae]
                                + [20 + i, 0.6 + 0.1 * i] * colour)

    write(tmp_path / "a.csv", [14, 12, 11])
    write(tmp_path / "b.csv", [16, 15, 9])
    baseline = {"mae": 12.4, "accuracy": 0.2463}
    assert plots.plot_quality_curves({"U-Net": tmp_path / "a.csv"}, tmp_path / "one.png", baseline)
    assert plots.plot_quality_curves({"U-Net": tmp_path / "a.csv", "GAN": tmp_path / "b.csv"},
                                       tmp_path / "two.png", baseline)
    one, two = (np.asarray(Image.open(tmp_path / f"{n}.png").convert("RGB")) for n in ("one", "two"))
    assert one.shape == two.shape and one.shape[1] > 600
    assert (one != two).any()  # the second run's curves are drawn
    # Logs with colour scores (eval.csv since 2026-12-02) add the colourfulness and palette rows.
    write(tmp_path / "c.csv", [16, 15, 9], colour=True)
    baseline.update(colourfulness_true=30.6, palette=0.273)
    assert plots.plot_quality_curves({"U-Net": tmp_path / "a.csv", "GAN": tmp_path / "c.csv"},
                                       tmp_path / "colour.png", baseline)
    colour = np.asarray(Image.open(tmp_path / "colour.png").convert("RGB"))
    assert colour.shape[1] == two.shape[1] and colour.shape[0] > 1.8 * two.shape[0]
    # The trade-off of MAE against colour: only from logs with colour scores.
    assert not plots.plot_colour_tradeoff({"U-Net": tmp_path / "a.csv"}, tmp_path / "no.png", baseline)
    assert not (tmp_path / "no.png").exists()
    assert plots.plot_colour_tradeoff({"U-Net": tmp_path / "a.csv", "GAN": tmp_path / "c.csv"},
                                        tmp_path / "tradeoff.png", baseline)
    assert np.asarray(Image.open(tmp_path / "tradeoff.png")).std() > 0
    (tmp_path / "empty.csv").write_text("step,epoch,seconds,accuracy,mae\n")
    assert not plots.plot_quality_curves({"GAN": tmp_path / "empty.csv"}, tmp_path / "none.png", baseline)
    assert not (tmp_path / "none.png").exists()
