"""Where training runs: one device, all local GPUs, or several machines (tf.distribute strategies).

`--batch-size` is always the global batch: each of the strategy's replicas gets an equal share,
the losses are averaged over the whole batch and BatchNorm may average its statistics over all
replicas (`--sync-bn`).  Only the chief worker writes checkpoints, logs and samples.
"""
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import tensorflow as tf

from util.cluster import STRATEGY_NAMES, check_tf_config

# Testing aid: split the CPU into this many logical devices, so `mirrored` can be tried on a
# machine without GPUs.  Read once, before TensorFlow touches a device.
LOGICAL_CPUS_VARIABLE = "COLORGAN_LOGICAL_CPUS"


def configure_logical_cpus():
    count = int(os.environ.get(LOGICAL_CPUS_VARIABLE) or 0)
    cpu = tf.config.list_physical_devices("CPU")[0]
    if count > 1 and not tf.config.get_logical_device_configuration(cpu):
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def one_device():
    return tf.distribute.get_strategy()  # the default strategy: no distribution, no overhead


def _mirrored():
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()  # every local GPU
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(cpus) if len(cpus) > 1 else one_device()


def _multiworker():
    check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _auto():
    return _mirrored() if len(tf.config.list_physical_devices("GPU")) > 1 else one_device()


STRATEGIES = dict(zip(STRATEGY_NAMES, (_auto, one_device, _mirrored, _multiworker)))


def make_strategy(name):
    """The named strategy; create it before any other TensorFlow op (multiworker needs that)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    configure_logical_cpus()
    return STRATEGIES[name]()


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """The worker that writes: the "chief" task, or worker 0 when the cluster has no chief."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def check_batch_size(batch_size, strategy):
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"--batch-size {batch_size} does not split evenly over {replicas} replicas: "
                         f"use a multiple of {replicas}")


def describe(strategy, batch_size):
    replicas = strategy.num_replicas_in_sync
    if replicas == 1 and not is_multi_worker(strategy):
        return "one device"
    workers = ""
    if is_multi_worker(strategy):
        spec = strategy.cluster_resolver.cluster_spec()
        workers = f" on {sum(spec.num_tasks(job) for job in spec.jobs if job in ('chief', 'worker'))} workers"
    return f"{replicas} replicas{workers}, {batch_size // replicas} images per replica"


class AnyWorker:
    """agree(flag): whether `flag` is true on any worker. A collective: every worker calls it at the
    same point. The all-reduce is traced once per AnyWorker (one per strategy)."""

    def __init__(self, strategy):
        def replica_fn(value):
            context = tf.distribute.get_replica_context()
            return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(value))

        self._reduce = tf.function(
            lambda value: strategy.experimental_local_results(strategy.run(replica_fn, args=(value,)))[0])

    def __call__(self, flag):
        return bool(self._reduce(tf.constant(1.0 if flag else 0.0)) > 0)


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}  # blocked while a multiworker strategy is made


class Watchdog:
    """Several workers: a collective whose peers never arrive (or died) blocks inside TensorFlow
    holding the GIL, so neither Ctrl-C nor SIGTERM nor a Python thread could stop it. A small
    process (util/watcher.py) watches the sections that wait on the other workers
    (`with watchdog.collective():`) and ends this one with a message when a section lasts more than
    `timeout` seconds (0: never), or has not ended GRACE seconds after Ctrl-C / SIGTERM. The last
    checkpoint stays intact (saves are atomic)."""
    GRACE = 10.0

    def __init__(self, timeout):
        signal_read, signal_write = os.pipe()
        section_read, self._sections = os.pipe()
        os.set_blocking(signal_write, False)
        watcher = Path(__file__).resolve().parents[1] / "util" / "watcher.py"
        self.process = subprocess.Popen(
            [sys.executable, str(watcher), str(os.getpid()), str(signal_read), str(section_read), str(timeout),
             str(self.GRACE)], pass_fds=(signal_read, section_read), stdin=subprocess.DEVNULL)
        os.close(signal_read)
        os.close(section_read)
        # The C signal handler writes each signal's number here, even while Python is blocked. Only
        # for signals with a Python handler: until train.py's own, SIGTERM exits as Ctrl-C does.
        signal.set_wakeup_fd(signal_write, warn_on_full_buffer=False)
        # TensorFlow's preemption notifier takes SIGTERM over while the strategy is made, and
        # ignores it. Ctrl-C took the other path, a KeyboardInterrupt, and a worker so interrupted
        # hung in 2 of 3 runs of the whole suite (never alone; the cause was not found): blocked
        # until then, both signals wait, the watcher sees them pending, and both take one path.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def reclaim_signals(self):
        """After the strategy is made: SIGTERM and Ctrl-C back to Python (a pending one is
        delivered now, and ends the process as a signal does before training starts)."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, _exit_on_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    @contextlib.contextmanager
    def collective(self):
        os.write(self._sections, b"+")
        try:
            yield
        finally:
            os.write(self._sections, b"-")


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


class NoWatchdog:
    """One machine: nothing waits on other workers."""

    def reclaim_signals(self):
        pass

    def collective(self):
        return contextlib.nullcontext()
