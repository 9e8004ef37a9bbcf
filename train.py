"""Train the paper's conditional GAN (--model gan) or its U-Net baseline (--model unet).

    python train.py --dataset cifar10 [--model unet] [options]

Running the same command again resumes from the run's latest checkpoint.  See options.py.
"""
import argparse
import dataclasses
import math
import signal
import sys
import tempfile
import time
from pathlib import Path


def strategy_option(argv):
    """--strategy as the full parser reads it (also --strategy=X and its unique prefixes), from the
    standard library alone: decided before any thread exists, whatever the paths are called."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--strategy")
    return p.parse_known_args(argv)[0].strategy


if __name__ == "__main__" and strategy_option(sys.argv[1:]) == "multiworker":
    # Before any thread starts (numpy's, then TensorFlow's), which inherit this: SIGTERM and Ctrl-C
    # wait until the strategy is made, so that TensorFlow's preemption notifier cannot swallow the
    # one and a KeyboardInterrupt cannot unwind TensorFlow's cluster set-up with the other
    # (distribute.Watchdog).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})

from options import RECIPE_OPTIONS  # noqa: E402
from options import parse_train_options  # noqa: E402
from util.quiet import quiet_tensorflow  # noqa: E402
from util.script import start_script  # noqa: E402

if __name__ == "__main__":
    start_script()
    parse_train_options()  # --help and bad options answer before TensorFlow is imported
    quiet_tensorflow()

import keras
import numpy as np
from tqdm import tqdm

from training import distribute
from evaluation import scoring
from evaluation import plots
from data.datasets import load_source
from data.errors import DatasetError
from data.pipeline import distributed_train_batches, fixed_sample, train_batches
from models import checkpoint as ckpt
from models.checkpoint import EMA_GROUP
from models.colorization import ColorizationModel
from inference.loading import ema_view, generator_group
from training.log import EVAL_SCORES, TrainingLog
from util import atomic
from util.runlock import LOCK_NAME, RunInUse, RunLock


class TrainingClock:
    """Seconds of training so far, across resumes; evaluations are not counted, so that the
    quality curves (eval.csv against seconds) do not depend on how often the run evaluates."""

    def __init__(self, seconds=0.0):
        self.started = time.time() - seconds

    def seconds(self):
        return time.time() - self.started

    def pause(self, function, *args):
        """Runs function(*args) off the clock."""
        begin = time.time()
        try:
            return function(*args)
        finally:
            self.started += time.time() - begin


class StopRequest:
    """Ctrl-C / SIGTERM ask the loop to stop after the current step and save; a second Ctrl-C kills.

    Several workers stop together: after every step they agree whether any of them was asked to,
    so all of them stop after the same step (one alone would leave the others waiting for it).
    """

    def __init__(self, strategy):
        self.signal = None
        self.stopping = False  # decided once per step, identically on every worker
        self.budget_spent = False
        self.several_workers = distribute.is_multi_worker(strategy)
        self.any_worker = distribute.AnyWorker(strategy) if self.several_workers else None
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def check(self, over_budget=False):
        """over_budget: this worker's time budget (--max-hours) is spent; workers agree on it too."""
        wanted = self.signal is not None
        if self.several_workers:
            wanted = self.any_worker(wanted)
            if wanted and self.signal is None:
                self.signal = signal.SIGTERM  # another worker was stopped
            if over_budget is not None:
                over_budget = self.any_worker(over_budget)
        self.budget_spent = bool(over_budget)
        self.stopping = wanted or self.budget_spent

    def _handle(self, signum, frame):
        self.signal = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)


def build_model(opt, strategy=None):
    """The model of a training configuration (options.TrainingConfig), on the strategy's devices."""
    return ColorizationModel(opt.architecture(), opt, strategy)


# Options a resumed run may change besides the recipe's, each announced: the data it reads and the
# order it reads them in.
DATA_OPTIONS = ("dataset", "dataset_path", "test_fraction", "seed")


def check_resumable(latest, opt, announce=True):
    """Refuses to resume a checkpoint of another architecture than this command's; announces the
    recipe and data options that change."""
    architecture, saved, _ = ckpt.read_metadata(latest)
    difference = architecture.difference(opt.architecture())
    if difference:
        raise ckpt.CheckpointError(f"{latest} belongs to another run ({difference}); "
                                   f"use another --checkpoints-path or the checkpoint's options")
    changed = [k for k in RECIPE_OPTIONS + DATA_OPTIONS if k in saved and saved[k] != getattr(opt, k)]
    for k in changed if announce else ():  # allowed, never silent
        print(f"note: --{k.replace('_', '-')} was {saved[k]} in {latest.name}, {getattr(opt, k)} from now on",
              file=sys.stderr)


def resumed_position(latest, state, n_images):
    """Where in its epoch a resumed run goes on: where it stopped, or at the epoch's start when the
    training set changed size since (photos added or removed: the epoch's order is another one)."""
    saved = ckpt.read_metadata(latest)[1].get("train_images")
    if saved in (None, n_images) and state["position"] <= n_images:
        return state["position"]
    was = f", {saved} when {latest.name} was saved" if saved else ""
    print(f"note: the training set has {n_images} images{was}: epoch {state['epoch'] + 1} starts over",
          file=sys.stderr)
    return 0


def newest_readable(candidates):
    """The newest checkpoint whose metadata reads (for the early check of the run's options)."""
    for path in reversed(candidates):
        try:
            ckpt.read_metadata(path)
            return path
        except ckpt.DamagedCheckpoint:
            continue
    return None


def restore_intact(model, candidates, opt):
    """Restores the newest intact checkpoint; damaged ones (truncated, overwritten, checksum wrong)
    are renamed *.h5.damaged, kept for inspection, and the next older one is tried. Returns
    (state, checkpoint), or the state of a new run and None when there is no checkpoint."""
    damaged = []
    for path in reversed(candidates):
        try:
            check_resumable(path, opt, announce=False)  # announced by the early check
            state = model.restore(path)
        except ckpt.DamagedCheckpoint as e:
            damaged.append(ckpt.set_aside(path).name)
            print(f"warning: {e}; set aside as {damaged[-1]}", file=sys.stderr)
            continue
        if damaged:
            print(f"warning: resuming from {path.name}, the newest intact checkpoint", file=sys.stderr)
        return state, path
    if damaged:
        raise ckpt.CheckpointError(f"no intact checkpoint in {Path(opt.checkpoints_path)} (set aside: "
                                   f"{', '.join(damaged)}); run the same command again to start afresh")
    return dict(ckpt.STATE_DEFAULTS), None


def warm_start(model, opt):
    """--init-generator: a new run's generator takes the weights of another run's (a GAN that
    fine-tunes a trained U-Net), their average where that run kept one (--g-ema). The optimizers
    and the step start afresh; the training clock starts at the other run's seconds, so that time
    to quality counts the whole training."""
    path = ckpt.resolve_checkpoint(opt.init_generator)
    architecture, _, state = ckpt.read_metadata(path)
    difference = architecture.generator_difference(model.architecture)
    if difference:
        raise ckpt.CheckpointError(f"--init-generator {path} has another generator ({difference})")
    group = generator_group(path)  # its weight average (--g-ema) where it has one, as inference takes it
    ckpt.restore_variables(path, {group: model.generator.variables})
    if model.generator_ema is not None:
        model.weight_average.reset()
    seconds = state["seconds"]
    which = ", its weight average" if group == EMA_GROUP else ""
    print(f"Generator initialised from {path} (step {state['step']}{which}, {seconds / 3600:.2f} h of training)")
    return {"epoch": 0, "position": 0, "seconds": seconds, "init_seconds": seconds, "init_generator": str(path.resolve())}


def save_samples(model, batch, path):
    rgb, L, _ = batch
    colorized = scoring.to_uint8(scoring.colorize(model, L))
    grid = plots.triplet_grid(rgb.numpy(), [colorized])
    plots.save_image(grid, path, min_size=512)
    return grid


def epoch_batches(strategy, source, opt, epoch, position):
    if strategy.num_replicas_in_sync == 1 and not distribute.is_multi_worker(strategy):
        return train_batches(source, opt.batch_size, opt.seed, epoch, position, opt.augment)
    return distributed_train_batches(strategy, source, opt.batch_size, opt.seed, epoch, position, opt.augment)


def train(opt, strategy=None, watchdog=None):
    strategy = strategy or distribute.one_device()
    watchdog = watchdog or distribute.NoWatchdog()
    run = Path(opt.checkpoints_path)
    new_folder = not run.exists()
    atomic.writable_folder(run, "run folder (--checkpoints-path)")
    try:
        with RunLock(run):
            return _train(opt, strategy, run, watchdog)
    except BaseException:
        if new_folder and [p.name for p in run.iterdir()] == [LOCK_NAME]:  # failed before writing anything
            (run / LOCK_NAME).unlink()
            run.rmdir()
        raise


def _train(opt, strategy, run, watchdog):
    gone = atomic.remove_temporaries(run)
    if gone:
        print(f"note: removed {len(gone)} temporary files of an interrupted save: {', '.join(gone)}",
              file=sys.stderr)
    candidates = ckpt.list_checkpoints(run)
    latest = newest_readable(candidates)
    if latest:
        check_resumable(latest, opt)
    train_source, test_source = load_sources(opt)
    steps_per_epoch = len(train_source) // opt.batch_size
    if steps_per_epoch == 0:
        raise DatasetError(f"{len(train_source)} training images is less than one batch of {opt.batch_size}")

    keras.utils.set_random_seed(opt.seed)
    with watchdog.collective():  # several workers: variables are made and shared together
        model = build_model(opt, strategy)
    loop, latest = resume(model, opt, strategy, watchdog, candidates, len(train_source))
    if latest:
        print(f"Resuming {latest} at step {loop.step} (epoch {loop.epoch + 1}, "
              f"image {loop.position} of {len(train_source)})")
    else:
        print(f"New run in {run}: {opt.model} on {opt.dataset} ({len(train_source)} training, "
              f"{len(test_source)} test images), {steps_per_epoch} steps per epoch on "
              f"{distribute.describe(strategy, opt.batch_size)}")
    log = TrainingLog(run)
    lost = log.forget_after(loop.step)
    if lost:
        print(f"note: removed {lost} log rows of steps after {loop.step}, which the "
              f"interrupted run did not save; they are trained again", file=sys.stderr)
    options = {**opt.stored(), "train_images": len(train_source)}  # for the fraction of an epoch
    if loop.init_generator:
        options["init_generator"] = loop.init_generator
    points = LoopPoints(model, opt, run, log, test_source, steps_per_epoch, options)
    stop = StopRequest(strategy)
    over_budget = (lambda: loop.clock.seconds() >= 3600 * opt.max_hours) if opt.max_hours else (lambda: False)

    while loop.epoch < opt.epochs and not done(loop.step, opt, stop):
        bar = tqdm(total=steps_per_epoch * opt.batch_size, initial=loop.position // opt.batch_size * opt.batch_size,
                   unit="img", desc=f"epoch {loop.epoch + 1}/{opt.epochs}", disable=not opt.progress,
                   dynamic_ncols=True, leave=True)
        loop.pending, tick, steps_before_epoch = [], time.time(), loop.step
        for position, L, ab in epoch_batches(strategy, train_source, opt, loop.epoch, loop.position):
            with watchdog.collective():
                loop.pending.append(model.train_step(L, ab))
            loop.step, loop.position = loop.step + 1, int(strategy.experimental_local_results(position)[0])
            bar.update(opt.batch_size)
            if loop.step % opt.log_interval == 0:
                row = points.log_losses(loop, time.time() - tick)
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()}, refresh=False)
                tick = time.time()
            if loop.step % opt.sample_interval == 0:
                points.samples(loop, f"step_{loop.step:08d}.png")
            if loop.step % opt.save_interval == 0:
                points.save(loop)
            if opt.eval_interval and loop.step % opt.eval_interval == 0 and loop.step % steps_per_epoch:
                points.evaluate(loop)
                tick = time.time()
            with watchdog.collective():
                stop.check(over_budget() if opt.max_hours else None)
            if done(loop.step, opt, stop):
                break
        bar.close()
        if loop.step == steps_before_epoch and not done(loop.step, opt, stop):
            raise DatasetError(f"no usable training images: every one of the {len(train_source)} files was "
                               f"skipped (grayscale or not decodable; see the warnings above)")
        if not done(loop.step, opt, stop) or loop.position + opt.batch_size > len(train_source):
            loop.epoch, loop.position = loop.epoch + 1, 0  # the epoch's end: a checkpoint, samples, scores
            points.save(loop)
            points.samples(loop, f"epoch_{loop.epoch:04d}.png")
            points.evaluate(loop)

    trained = latest is None or loop.step > loop.resumed_step
    if trained and loop.step not in points.evaluated and not stop.signal:
        points.evaluate(loop)  # the run's last point of the quality curves (budget or --max-steps reached)
    if trained:
        points.save(loop)
    log.flush()
    if stop.signal:
        print(f"Stopped at step {loop.step}: saved {run / ckpt.checkpoint_name(loop.step)}; "
              f"run the same command to resume", file=sys.stderr)
        return 128 + stop.signal
    budget = f", {opt.max_hours:g} h budget spent" if stop.budget_spent else ""
    print(f"Finished at step {loop.step} (epoch {loop.epoch}{budget}): {run / ckpt.checkpoint_name(loop.step)}")
    return 0


def load_sources(opt):
    train_source = load_source(opt.dataset, opt.dataset_path, "train", opt.image_size, download=True,
                               test_fraction=opt.test_fraction, max_megapixels=opt.max_megapixels)
    test_source = load_source(opt.dataset, opt.dataset_path, "test", opt.image_size,
                              test_fraction=opt.test_fraction, max_megapixels=opt.max_megapixels)
    if train_source.dropped:
        print(f"dropped {train_source.dropped} grayscale images of {len(train_source) + train_source.dropped} "
              f"(as the reference does)", file=sys.stderr)
    return train_source, test_source


class Loop:
    """Where the training loop stands: what a checkpoint stores of it (`progress()`) and what a
    resume restores. `pending`: the losses of the steps since the last log row."""

    def __init__(self, step, epoch, position, seconds=0.0, init_seconds=None, init_generator=None):
        self.step = self.resumed_step = step
        self.epoch, self.position = epoch, position
        self.clock = TrainingClock(seconds)
        # --init-generator in a new run: the checkpoint file it read, and its training seconds
        self.init_seconds, self.init_generator = init_seconds, init_generator
        self.pending = []

    def progress(self):
        warm = {} if self.init_seconds is None else {"init_seconds": self.init_seconds}
        return {"epoch": self.epoch, "position": self.position, "seconds": self.clock.seconds(), **warm}


def resume(model, opt, strategy, watchdog, candidates, n_images):
    """The loop's state: from the newest intact checkpoint, or a new run's (warm-started by
    --init-generator); with several workers, the chief's. Returns (loop, the checkpoint or None)."""
    state, latest = restore_intact(model, candidates, opt)
    if latest:
        state = {**state, "position": resumed_position(latest, state, n_images)}
    if latest is None and opt.init_generator:
        state = warm_start(model, opt)
    if distribute.is_multi_worker(strategy):
        # Only the chief reads the run folder: the other workers take its weights and progress.
        with watchdog.collective():
            progress = model.broadcast_from_chief({k: state[k] for k in ("epoch", "position", "seconds")})
        state = {**state, **progress, "epoch": int(progress["epoch"]), "position": int(progress["position"])}
    return Loop(int(model.step.numpy()), state["epoch"], state["position"], state["seconds"],
                state.get("init_seconds"), state.get("init_generator")), latest


class LoopPoints:
    """What the loop does at its points, from the loop's state: a log row, sample grids, a
    checkpoint, an evaluation."""

    def __init__(self, model, opt, run, log, test_source, steps_per_epoch, options):
        self.model, self.opt, self.run, self.log = model, opt, run, log
        self.test_source, self.steps_per_epoch, self.options = test_source, steps_per_epoch, options
        self.sample_batch = fixed_sample(test_source, opt.sample_size, opt.seed)
        self.evaluated = set()

    def log_losses(self, loop, seconds):
        """The mean losses of the steps since the last row (non-finite: the run stops), logged."""
        row = check_finite(loop.pending, loop.step)
        rate = len(loop.pending) * self.opt.batch_size / seconds
        self.log.losses({**row, "step": loop.step, "epoch": loop.epoch + 1, "seconds": round(loop.clock.seconds(), 1),
                         "lr": float(self.model.learning_rate()), "images_per_s": round(rate, 1)})
        loop.pending = []
        return row

    def samples(self, loop, name):
        self.log.image("samples", loop.step, save_samples(self.model, self.sample_batch, self.run / "samples" / name))

    def save(self, loop):
        check_finite(loop.pending, loop.step)  # never a checkpoint of diverged weights, and no pruning
        if not self.model.all_finite():
            raise TrainingDiverged(f"training diverged by step {loop.step} (non-finite weights); the last "
                                   f"checkpoint is kept; resume from it with a lower --lr")
        path = self.run / ckpt.checkpoint_name(loop.step)
        try:
            self.model.save(path, self.options, loop.progress())
        except OSError as e:  # a full disk, a folder made read-only: the last checkpoint is intact
            raise ckpt.CheckpointError(f"cannot save {path} ({e.strerror or e}); the last checkpoint is kept") from None
        ckpt.prune_checkpoints(self.run, self.opt.keep_checkpoints)

    def evaluate(self, loop):
        """Off the training clock."""
        epochs = round(loop.epoch + loop.position / (self.steps_per_epoch * self.opt.batch_size), 3)  # mid-epoch
        loop.clock.pause(evaluate_and_plot, self.model, self.opt, self.log, self.test_source, self.run, loop.step,
                         epochs, loop.clock.seconds())
        self.evaluated.add(loop.step)


class TrainingDiverged(Exception):
    pass


def check_finite(pending, step):
    """The mean of each loss over the steps since the last log row; a non-finite one stops the run."""
    if not pending:
        return {}
    row = {name: float(np.mean([p[name] for p in pending])) for name in pending[0]}
    bad = ", ".join(f"{name} = {value}" for name, value in row.items() if not math.isfinite(value))
    if bad:
        raise TrainingDiverged(f"training diverged by step {step} ({bad}); the last checkpoint is "
                               f"kept; resume from it with a lower --lr")
    return row


def done(step, opt, stop):  # stop.stopping includes a spent --max-hours
    return stop.stopping or (opt.max_steps is not None and step >= opt.max_steps)


def evaluate_and_plot(model, opt, log, test_source, run, step, epoch, seconds):
    """Test accuracy, MAE, colourfulness and palette into eval.csv (with the training seconds so
    far), and loss.png; with --g-ema, the weight average's too (accuracy_ema, mae_ema, ...)."""
    if opt.eval_images != 0:
        limit = None if opt.eval_images < 0 else opt.eval_images
        scored = {"": model}
        if model.generator_ema is not None:
            scored["_ema"] = ema_view(model)
        row = {"step": step, "epoch": epoch, "seconds": round(seconds, 1)}
        for suffix, predictor in scored.items():
            scores = scoring.evaluate(predictor, test_source, opt.batch_size, limit, EVAL_SCORES)
            row.update({f"{name}{suffix}": value for name, value in scores.items()})
        log.evaluation(row)
        images = min(limit or len(test_source), len(test_source))
        average = (f"; weight average {row['accuracy_ema']:.2%}, MAE {row['mae_ema']:.2f}, "
                   f"colourfulness {row['colourfulness_ema']:.1f}" if "mae_ema" in row else "")
        print(f"step {step} (epoch {epoch:g}, {seconds / 3600:.2f} h): test accuracy {row['accuracy']:.2%}, "
              f"MAE {row['mae']:.2f}, colourfulness {row['colourfulness']:.1f}{average} ({images} images)")
    if log.log_path.exists():
        plots.plot_loss_curves({opt.model: log.log_path}, run / "loss.png")
    log.flush()


def main(argv=None):
    opt = parse_train_options(argv)
    # Before the strategy: with several workers, anything from here on may wait for the others.
    watchdog = distribute.Watchdog(opt.worker_timeout) if opt.strategy == "multiworker" else None
    try:
        with (watchdog or distribute.NoWatchdog()).collective():
            strategy = distribute.make_strategy(opt.strategy)
        (watchdog or distribute.NoWatchdog()).reclaim_signals()
        distribute.check_batch_size(opt.batch_size, strategy)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if opt.sync_bn is None:
        opt = dataclasses.replace(opt, sync_bn=strategy.num_replicas_in_sync > 1)
    with tempfile.TemporaryDirectory(prefix="colorgan_worker_") as scratch:
        if not distribute.is_chief(strategy):
            # Only the chief's files count: the other workers write into a folder deleted at the end.
            opt = dataclasses.replace(opt, checkpoints_path=scratch, progress=False)
        try:
            return train(opt, strategy, watchdog)
        except (DatasetError, ckpt.CheckpointError, TrainingDiverged, RunInUse, atomic.NotWritable) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except OSError as e:  # a log or figure that cannot be written (disk full, permissions)
            print(f"error: {e.strerror or e}: {e.filename or ''}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
