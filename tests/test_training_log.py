"""training/log.py and the logs train.py writes: training seconds in eval.csv across a resume,
evaluations off the clock, the time budget, old logs, and the rows of steps lost in a crash."""
import csv

import pytest

import train
from tests.helpers import TINY_OPTIONS, image_folder
from training.log import TrainingLog

TINY = TINY_OPTIONS + ["--model", "unet", "--sample-interval", "100", "--save-interval", "100"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class SlowEvaluations:
    """train.py's clock, where every evaluation takes 1000 s more than it does."""

    def __init__(self, monkeypatch):
        self.offset = 0.0
        real_time, evaluate = train.time.time, train.evaluate_and_plot

        def slow_evaluate(*args):
            self.offset += 1000.0
            return evaluate(*args)
        monkeypatch.setattr(train, "time", type("Time", (), {"time": staticmethod(lambda: real_time() + self.offset)}))
        monkeypatch.setattr(train, "evaluate_and_plot", slow_evaluate)


@pytest.mark.slow
def test_eval_csv_has_training_seconds_across_a_resume_and_the_budget_stops_the_run(tmp_path, capsys, monkeypatch):
    # ...and the weight average's scores (--g-ema) from the resume that turns it on.
    images = image_folder(tmp_path / "images")
    run_dir = tmp_path / "run"
    base = TINY + ["--dataset-path", str(images), "--checkpoints-path", str(run_dir), "--eval-interval", "2"]
    clock = SlowEvaluations(monkeypatch)
    assert train.main(base + ["--max-steps", "3", "--epochs", "9"]) == 0
    # Resumed with the generator's weight average turned on: it starts from the checkpoint's
    # weights, and eval.csv gains its columns from then on.
    assert train.main(base + ["--max-steps", "6", "--epochs", "9", "--g-ema", "0.9"]) == 0
    assert "has no weight average" in capsys.readouterr().err
    rows = read_csv(run_dir / "eval.csv")
    assert [bool(r["mae_ema"]) for r in rows] == [False, False, True, True, True]
    assert all(float(r["mae_ema"]) > 0 and 0 <= float(r["accuracy_ema"]) <= 1 for r in rows[2:])
    # The colour scores of every evaluation, the average's from the resume on.
    assert all(float(r["colourfulness"]) >= 0 and 0 < float(r["palette"]) <= 1 for r in rows)
    assert [bool(r["colourfulness_ema"]) for r in rows] == [False, False, True, True, True]
    # Every 2 steps, each epoch's end (5 steps of 4 of the 22 images) and each run's last step.
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 5, 6]
    assert [float(r["epoch"]) for r in rows] == [0.4, 0.6, 0.8, 1.0, 1.2]
    assert clock.offset == 5000.0
    # Evaluations are off the training clock, which a resume continues: five evaluations of
    # 1000 s each, and not one of them counted.
    seconds = [float(r["seconds"]) for r in rows]
    # (Written to 0.1 s: a tiny step may take less, so two evaluations a step apart may tie.)
    assert 0 < seconds[0] < seconds[-1] < 1000 and all(b >= a for a, b in zip(seconds, seconds[1:]))
    log = {int(r["step"]): float(r["seconds"]) for r in read_csv(run_dir / "log.csv")}
    assert all(log[int(r["step"])] <= float(r["seconds"]) <= log.get(int(r["step"]) + 1, 1e9) for r in rows)
    assert max(log.values()) < 1000

    # A spent time budget ends the run after one step, with a last evaluation.
    capsys.readouterr()
    assert train.main(base + ["--max-hours", "1e-9", "--epochs", "9"]) == 0
    assert "1e-09 h budget spent" in capsys.readouterr().out
    assert int(read_csv(run_dir / "eval.csv")[-1]["step"]) == 7


def test_an_old_eval_log_keeps_its_columns(tmp_path):
    (tmp_path / "eval.csv").write_text("step,epoch,accuracy,mae\n1,1,0.1,15.0\n")
    log = TrainingLog(tmp_path)
    log.evaluation({"step": 2, "epoch": 2, "seconds": 9.0, "accuracy": 0.2, "mae": 14.0})
    assert (tmp_path / "eval.csv").read_text().splitlines() == ["step,epoch,accuracy,mae", "1,1,0.1,15.0",
                                                               "2,2,0.2,14.0"]
    # ...and gains the colour scores, which a resumed run of an older version adds, with nothing
    # for the rows before.
    log.evaluation({"step": 3, "epoch": 3, "seconds": 12.0, "accuracy": 0.3, "mae": 13.0,
                    "colourfulness": 21.5, "palette": 0.75})
    assert (tmp_path / "eval.csv").read_text().splitlines() == [
        "step,epoch,accuracy,mae,colourfulness,palette", "1,1,0.1,15.0,,", "2,2,0.2,14.0,,", "3,3,0.3,13.0,21.5,0.75"]


def test_rows_of_steps_lost_with_a_crash_are_forgotten_on_resume(tmp_path):
    (tmp_path / "log.csv").write_text("step,epoch,seconds,g_l1\n10,1,5.0,0.2\n20,1,9.0,0.1\n30,1,14.0,0.1\n")
    (tmp_path / "eval.csv").write_text("step,epoch,seconds,accuracy,mae\n20,1.0,9.0,0.1,15.0\n")
    log = TrainingLog(tmp_path)
    assert log.forget_after(20) == 1  # the checkpoint was at step 20; step 30 was lost
    assert (tmp_path / "log.csv").read_text().splitlines() == ["step,epoch,seconds,g_l1", "10,1,5.0,0.2",
                                                               "20,1,9.0,0.1"]
    assert (tmp_path / "eval.csv").read_text().splitlines()[-1] == "20,1.0,9.0,0.1,15.0"
    assert log.forget_after(20) == 0 and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.slow
def test_after_a_crash_the_resumed_logs_hold_each_step_once(tmp_path, capsys):
    images = image_folder(tmp_path / "images")
    run_dir = tmp_path / "run"
    base = TINY + ["--dataset-path", str(images), "--checkpoints-path", str(run_dir), "--epochs", "9",
                   "--save-interval", "2", "--eval-interval", "1"]
    assert train.main(base + ["--max-steps", "3"]) == 0
    (run_dir / "step_00000003.h5").unlink()  # as if killed (-9) after step 3's logs, before its save
    assert train.main(base + ["--max-steps", "5"]) == 0
    assert "removed 2 log rows of steps after 2" in capsys.readouterr().err
    assert [int(r["step"]) for r in read_csv(run_dir / "log.csv")] == [1, 2, 3, 4, 5]
    assert [int(r["step"]) for r in read_csv(run_dir / "eval.csv")] == [1, 2, 3, 4, 5]
