"""What a training run writes as it goes: CSV logs (appended on resume) and TensorBoard events."""
import csv
import math
from pathlib import Path

import tensorflow as tf

from util.atomic import atomic_write

LOG_FIELDS = ("step", "epoch", "seconds", "lr", "images_per_s", "d_real", "d_fake", "g_gan", "g_l1")
# Each score of the trained weights, then of their average (*_ema: train.py --g-ema).
EVAL_SCORES = ("accuracy", "mae", "colourfulness", "palette")
EVAL_FIELDS = ("step", "epoch", "seconds") + EVAL_SCORES + tuple(f"{name}_ema" for name in EVAL_SCORES)
CORE_FIELDS = LOG_FIELDS + EVAL_FIELDS[:5]  # written even when a row lacks them


class TrainingLog:
    def __init__(self, run_dir):
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = run_dir / "log.csv"
        self.eval_path = run_dir / "eval.csv"
        self.events_dir = run_dir / "tensorboard"
        before = set(self.events_dir.glob("events.out.tfevents.*"))
        self.writer = tf.summary.create_file_writer(str(self.events_dir))
        self.writer.flush()
        new = set(self.events_dir.glob("events.out.tfevents.*")) - before
        self._own_events = next(iter(new)).name if len(new) == 1 else None

    def forget_after(self, step):
        """Removes the CSV rows and TensorBoard events of steps after `step`, which a crash lost and
        the resumed run trains again, so that every step appears once; returns how many CSV rows
        went. Files are replaced atomically: a crash here leaves the old file or the new one."""
        removed = 0
        for path in (self.log_path, self.eval_path):
            if not path.exists():
                continue
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            if not rows:
                continue
            keep = [rows[0]] + [r for r in rows[1:] if r and _number(r[0]) <= step]
            if len(keep) == len(rows):
                continue
            removed += len(rows) - len(keep)
            atomic_write(path, lambda f: csv.writer(f).writerows(keep), "w")
        for path in sorted(self.events_dir.glob("events.out.tfevents.*")):
            if path.name != self._own_events:
                _forget_events_after(path, step)
        return removed
    def losses(self, row):
        self._append(self.log_path, LOG_FIELDS, row)
        with self.writer.as_default(step=row["step"]):
            for key in ("lr", "images_per_s", "d_real", "d_fake", "g_gan", "g_l1"):
                if key in row:
                    tf.summary.scalar(f"train/{key}", row[key])

    def evaluation(self, row):
        self._append(self.eval_path, EVAL_FIELDS, row)
        with self.writer.as_default(step=row["step"]):
            for key in EVAL_FIELDS[3:]:
                if key in row:
                    tf.summary.scalar(f"test/{key}", row[key])

    def image(self, name, step, array):
        with self.writer.as_default(step=step):
            tf.summary.image(name, array[None], max_outputs=1)

    def flush(self):
        self.writer.flush()

    @staticmethod
    def _append(path, fields, row):
        # Append only: a resumed run continues the same log (forget_after drops the rows of lost steps).
        fields = [k for k in fields if k in row or k in CORE_FIELDS]  # no empty *_ema columns without --g-ema
        new = not path.exists() or path.stat().st_size == 0
        if not new:  # a log begun by an older version keeps its core columns as they were...
            with open(path, newline="") as f:
                header = next(csv.reader(f), None) or fields
            # ...and gains the optional scores it lacks (--g-ema turned on at a resume, the colour scores).
            added = [k for k in fields if k not in CORE_FIELDS and k not in header]
            if added:
                with open(path, newline="") as f:
                    rows = list(csv.DictReader(f))
                header = header + added
                atomic_write(path, lambda f: _write_rows(f, header, rows), "w")
            fields = header
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


def _write_rows(f, fields, rows):
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)


def _number(text):
    try:
        return float(text)
    except ValueError:
        return math.inf  # a damaged row is dropped with the lost ones


def _forget_events_after(path, step):
    """Rewrites one TensorBoard event file without the events of steps after `step` (a record cut
    short by a crash ends the file: what precedes it is kept)."""
    records, dropped = [], False
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            record = record.numpy()
            event = tf.compat.v1.Event.FromString(record)
            if event.HasField("summary") and event.step > step:
                dropped = True
            else:
                records.append(record)
    except tf.errors.DataLossError:
        dropped = True
    if not dropped:
        return

    def write(tmp):
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for record in records:
                writer.write(record)

    atomic_write(path, write, mode=None)
