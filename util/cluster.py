"""The cluster of a multiworker run, read from TF_CONFIG without TensorFlow (options.py checks it
at parse time, before anything heavy starts)."""
import json
import os

STRATEGY_NAMES = ("auto", "one", "mirrored", "multiworker")  # distribute.STRATEGIES, in this order

NO_TF_CONFIG = ("--strategy multiworker needs the TF_CONFIG environment variable "
                "(see docs/training.md, 'Several GPUs and machines')")


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
                         '"task": {"type": "worker", "index": i}} (see docs/training.md)')
    members = cluster.get(task["type"])
    if not isinstance(members, list) or not isinstance(task["index"], int) or not 0 <= task["index"] < len(members):
        raise ValueError(f"TF_CONFIG's task {task['type']} {task['index']} is not in its cluster {cluster}")
    return cluster
