"""tools/ablation.py: every row trains for the budget, is scored in both BatchNorm protocols, and is
written with its exact command; a finished row is not run again."""
import pytest

from tools import ablation
import options
from tests.helpers import image_folder


@pytest.mark.slow
def test_an_ablation_writes_its_table_and_continues_where_it_stopped(tmp_path, monkeypatch):
    images = image_folder(tmp_path / "images")
    monkeypatch.chdir(ablation.ROOT)
    args = ["--model", "unet", "--dataset", "folder", "--dataset-path", str(images), "--image-size", "16",
            "--batch-size", "4", "--budget-minutes", "1e-6", "--runs", str(tmp_path / "runs"),
            "--table", str(tmp_path / "table.md")]
    assert ablation.main(args + ["--rows", "paper"]) == 0  # one row: each row's command is checked below
    table = (tmp_path / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| paper")]
    assert len(rows) == 1 and " / " in rows[0]
    assert "--bn-statistics both" in table and "--max-hours 1.66667e-08" in table
    results = tmp_path / "runs" / "folder_unet_paper" / "test" / "results.json"
    before = results.stat().st_mtime_ns
    assert ablation.main(args + ["--rows", "paper"]) == 0  # done already: read, not run again
    assert results.stat().st_mtime_ns == before


def test_bad_ablation_options_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        ablation.main(["--budget-minutes", "0"])
    assert e.value.code == 2 and "--budget-minutes must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        ablation.main(["--rows", "adamw"])
    assert e.value.code == 2 and "invalid choice: 'adamw'" in capsys.readouterr().err


def test_an_epoch_budget_trains_each_row_for_those_epochs():
    opt = ablation.parse_options(["--model", "gan", "--budget-epochs", "2", "--rows", "zero-head"])
    run, train, test = ablation.commands(opt, "zero-head")
    assert train[train.index("--epochs") + 1] == "2" and "--max-hours" not in train
    assert "--zero-head" in train and run.name == "cifar10_gan_zero-head"
    with pytest.raises(SystemExit):
        ablation.parse_options(["--budget-epochs", "2", "--budget-minutes", "3"])  # one budget, not two


@pytest.mark.parametrize("name", sorted(ablation.ROWS))
def test_every_row_is_a_command_train_py_accepts_and_its_own_options_win(name):
    opt = ablation.parse_options(["--model", "gan", "--batch-size", "64", "--rows", name])
    _, train, _ = ablation.commands(opt, name)
    parsed = options.parse_train_options(train[1:])  # argparse exits on an option train.py lacks
    assert parsed.batch_size == (32 if "batch-32" in name else 64)
    assert parsed.zero_head == (name in ("zero-head", "fast") or name.startswith("fast-"))
    assert parsed.beta1 == (0.5 if "beta1-0.5" in name else 0.0)
