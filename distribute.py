"""Where training runs: one device, all local GPUs, or several machines (tf.distribute strategies).

`--batch-size` is always the global batch: each of the strategy's replicas gets an equal share,
the losses are averaged over the whole batch and BatchNorm may average its statistics over all
replicas (`--sync-bn`).  Only the chief worker writes checkpoints, logs and samples.
"""
import json
import os

import tensorflow as tf

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


NO_TF_CONFIG = ("--strategy multiworker needs the TF_CONFIG environment variable "
                "(see README.md, 'Several GPUs and machines')")


def check_tf_config():
    """The cluster of a multiworker run, from TF_CONFIG; a ValueError names what is wrong with it."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(NO_TF_CONFIG)
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict) or not {"type", "index"} <= set(task):
        raise ValueError('TF_CONFIG needs {"cluster": {"worker": ["host:port", ...]}, '
                         '"task": {"type": "worker", "index": i}} (see README.md)')
    members = cluster.get(task["type"])
    if not isinstance(members, list) or not isinstance(task["index"], int) or not 0 <= task["index"] < len(members):
        raise ValueError(f"TF_CONFIG's task {task['type']} {task['index']} is not in its cluster {cluster}")
    return cluster


def _multiworker():
    check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _auto():
    return _mirrored() if len(tf.config.list_physical_devices("GPU")) > 1 else one_device()


STRATEGIES = {"auto": _auto, "one": one_device, "mirrored": _mirrored, "multiworker": _multiworker}


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


_AGREEMENTS = {}


def any_worker(strategy, flag):
    """Whether `flag` is true on any worker: a collective, so every worker calls it at the same point."""
    agree = _AGREEMENTS.get(id(strategy))
    if agree is None:
        @tf.function
        def agree(value):
            def replica_fn():
                context = tf.distribute.get_replica_context()
                return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(value))
            return strategy.experimental_local_results(strategy.run(replica_fn))[0]
        _AGREEMENTS[id(strategy)] = agree
    return bool(agree(tf.constant(1.0 if flag else 0.0)) > 0)
