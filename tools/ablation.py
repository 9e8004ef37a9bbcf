"""What makes learning slow: train.py at one fixed budget per row, each row changing one thing in
the paper's recipe, each scored by test.py on the whole test split.

    python tools/ablation.py --model unet --budget-epochs 2 --mixed-precision
    python tools/ablation.py --model gan --budget-minutes 12 --mixed-precision --rows paper label-smoothing

A budget in epochs compares what each recipe learns from the same images, whatever else runs on
the machine; a budget in minutes compares time to quality (batch size and speed count), but only
on a machine doing nothing else. The table gives both the epochs and the training hours of each row.

Each row trains in its own run folder under --runs (a row that has its results is not run again,
so an interrupted ablation continues where it stopped) and the table, with the exact command of
every row, goes to --table (markdown).
"""
import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the project's root: train.py and test.py run there
sys.path.insert(0, str(ROOT))  # python tools/ablation.py finds options.py
# name -> (what changes, train.py options); "paper" is the recipe of docs/recipe.md as train.py's
# defaults give it, and every other row changes one thing.
ROWS = {
    "paper": ("the paper's recipe (reference initialiser)", []),
    "glorot": ("Keras' default initialiser (Glorot uniform)", ["--init", "glorot"]),
    "zero-head": ("colour head starts at zero (predicts grey)", ["--zero-head"]),
    "fast": ("--recipe fast (options.RECIPES)", ["--recipe", "fast"]),
    "lr-1e-3": ("learning rate 1e-3 (paper: 3e-4)", ["--lr", "1e-3"]),
    "lr-1e-4": ("learning rate 1e-4", ["--lr", "1e-4"]),
    "no-decay": ("no learning-rate decay", ["--lr-decay-rate", "1"]),
    "beta1-0.5": ("Adam beta1 0.5 (paper: 0)", ["--beta1", "0.5"]),
    "no-dropout": ("no dropout (the reference's never ran)", ["--dropout", "0"]),
    "batch-32": ("batch 32 (paper: 128)", ["--batch-size", "32"]),
    "label-smoothing": ("one-sided label smoothing (GAN)", ["--label-smoothing"]),
    # Beyond one change from the paper: the fast recipe with a schedule that decays within a
    # CPU budget (x0.1 per 2,000 steps instead of 10,000).
    "fast-decay-2k": ("--recipe fast, learning rate x0.1 per 2,000 steps", ["--recipe", "fast", "--lr-decay-steps", "2000"]),
    # The fast recipe with the two single changes that helped the paper's recipe most after the
    # zero head (docs/time_to_quality.md), to see whether they add to it.
    "fast-beta1-0.5": ("--recipe fast, Adam beta1 0.5", ["--recipe", "fast", "--beta1", "0.5"]),
    "fast-batch-32": ("--recipe fast, batch 32", ["--recipe", "fast", "--batch-size", "32"]),
    # Photographs: the same recipe in the U-Net at half the width (models/registry.py).
    "fast-narrow": ("--recipe fast, the U-Net at half width", ["--recipe", "fast", "--generator", "unet-narrow"]),
}
DEFAULT_ROWS = {"unet": ["paper", "zero-head", "glorot", "lr-1e-3", "lr-1e-4", "no-decay", "beta1-0.5", "no-dropout", "batch-32"],
                "gan": ["paper", "lr-1e-3", "no-dropout", "batch-32", "label-smoothing"]}


def parse_options(argv=None):
    from options import Parser
    p = Parser(description="A fixed-budget ablation of the training recipe.")
    p.add_argument("--model", default="unet", choices=("unet", "gan"))
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--dataset-path", help="passed to train.py (default: datasets/<dataset>)")
    p.add_argument("--image-size", type=int, help="passed to train.py (default: the dataset's)")
    p.add_argument("--batch-size", type=int, help="passed to train.py (default: the dataset's; rows may change it)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget-minutes", type=float, help="training time of every row (default: 6)")
    budget.add_argument("--budget-epochs", type=int, help="training epochs of every row")
    p.add_argument("--rows", nargs="+", choices=sorted(ROWS), help="rows to run (default: all for the model)")
    p.add_argument("--mixed-precision", action="store_true", help="train every row in bfloat16 / float16")
    p.add_argument("--max-images", type=int, help="score on the first N test images (default: all)")
    p.add_argument("--runs", default="runs/ablation", help="folder of the rows' run folders")
    p.add_argument("--table", help="markdown table to write (default: <runs>/<dataset>_<model>.md)")
    p.add_argument("--python", default=sys.executable, help=argparse.SUPPRESS)
    opt = p.parse_args(argv)
    if opt.budget_epochs is None and opt.budget_minutes is None:
        opt.budget_minutes = 6.0
    if opt.budget_minutes is not None and not opt.budget_minutes > 0:
        p.error("--budget-minutes must be positive")
    if opt.budget_epochs is not None and opt.budget_epochs <= 0:
        p.error("--budget-epochs must be positive")
    if opt.max_images is not None and opt.max_images <= 0:
        p.error("--max-images must be positive")
    opt.rows = opt.rows or DEFAULT_ROWS[opt.model]
    return opt


def commands(opt, name):
    """The train.py and test.py commands of one row, as a user would type them."""
    run = Path(opt.runs) / f"{opt.dataset}_{opt.model}_{name}"
    budget = (["--epochs", str(opt.budget_epochs)] if opt.budget_epochs else
              ["--max-hours", f"{opt.budget_minutes / 60:g}", "--epochs", "100000"])
    train = ["train.py", "--dataset", opt.dataset, "--model", opt.model, *budget, "--eval-images", "0",
             "--checkpoints-path", str(run), "--no-progress"]
    for option in ("dataset_path", "image_size", "batch_size"):
        if getattr(opt, option) is not None:
            train += [f"--{option.replace('_', '-')}", str(getattr(opt, option))]
    train += (["--mixed-precision"] if opt.mixed_precision else []) + ROWS[name][1]
    test = ["test.py", "--checkpoint", str(run), "--bn-statistics", "both", "--output", str(run / "test"),
            "--no-progress"] + (["--max-images", str(opt.max_images)] if opt.max_images else [])
    return run, train, test


def run_row(opt, name):
    run, train, test = commands(opt, name)
    results = run / "test" / "results.json"
    if not results.exists():
        for command in (train, test):
            print(f"[{name}] python {shlex.join(command)}", flush=True)
            begin = time.time()
            result = subprocess.run([opt.python, *command], cwd=ROOT)
            if result.returncode != 0:
                raise SystemExit(f"error: row {name!r} failed ({command[0]} exited with {result.returncode})")
            print(f"[{name}] {command[0]} took {time.time() - begin:.0f} s", flush=True)
    rows = json.loads(results.read_text())
    return {"name": name, "rows": rows}


def markdown(opt, results):
    baseline = results[0]["rows"][0]
    budget = f"{opt.budget_epochs} epochs" if opt.budget_epochs else f"{opt.budget_minutes:g} min"
    lines = [f"{opt.dataset}, {opt.model}, {budget} of training per row"
             + (", mixed precision" if opt.mixed_precision else "") + "; test split: all images"
             + (f" (first {opt.max_images})" if opt.max_images else "") + ".",
             f"No colour: MAE {baseline['MAE']}, accuracy {baseline['Accuracy']} %.", "",
             "| row | change | epochs | hours | MAE (moving / batch BN) | accuracy % (moving / batch BN) "
             "| colourfulness (moving) | palette % (moving) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        moving, batch = (next(x for x in r["rows"] if x.get("BatchNorm") == p) for p in ("moving", "batch"))
        lines.append(f"| {r['name']} | {ROWS[r['name']][0]} | {moving['Epochs']} | {moving['Hours']} | {moving['MAE']} / {batch['MAE']} "
                     f"| {moving['Accuracy']} / {batch['Accuracy']} | {moving['Colourfulness']} "
                     f"| {moving.get('Palette', '-')} |")
    lines += ["", "Commands (from the project's root):", ""]
    for r in results:
        _, train, test = commands(opt, r["name"])
        lines.append(f"- {r['name']}: `python {shlex.join(train)}` then `python {shlex.join(test)}`")
    return "\n".join(lines) + "\n"


def main(argv=None):
    opt = parse_options(argv)
    table = Path(opt.table or Path(opt.runs) / f"{opt.dataset}_{opt.model}.md")
    results = []
    for name in opt.rows:
        results.append(run_row(opt, name))
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(markdown(opt, results))  # after every row: a partial ablation is readable
    print(table.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
