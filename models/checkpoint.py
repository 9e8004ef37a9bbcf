"""Self-describing HDF5 checkpoints: both networks, both optimizer states, progress and options.

Layout of one `.h5` file:
    attrs: format, version, config (JSON: architecture), options (JSON: the resolved run options),
           state (JSON: step, epoch, position in the epoch)
    <group per network or optimizer>/<index>: one dataset per variable, attr "path" = variable path
Files are written to a temporary name and renamed, so a crash never leaves a broken checkpoint.
"""
import json
import os
import re
import tempfile
from pathlib import Path

import h5py
import numpy as np

FORMAT = "colorgan-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.h5$")


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable, foreign or for another architecture."""


def write_checkpoint(path, variable_groups, config, options, state):
    """Atomically writes `variable_groups` ({group: [variables]}) and the JSON metadata to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["config"] = json.dumps(config)
            f.attrs["options"] = json.dumps(options)
            f.attrs["state"] = json.dumps(state)
            for group_name, variables in variable_groups.items():
                group = f.create_group(group_name)
                for i, variable in enumerate(variables):
                    data = group.create_dataset(f"{i:04d}", data=np.asarray(variable.numpy()))
                    data.attrs["path"] = variable.path
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_metadata(path):
    """Returns (config, options, state) of a checkpoint, or raises CheckpointError."""
    with _open(path) as f:
        return tuple(json.loads(f.attrs[key]) for key in ("config", "options", "state"))


def restore_variables(path, variable_groups):
    """Assigns every variable of `variable_groups` from the checkpoint, after checking all fit."""
    with _open(path) as f:
        pending = []
        for group_name, variables in variable_groups.items():
            if group_name not in f or len(f[group_name]) != len(variables):
                raise CheckpointError(f"{path}: its {group_name} does not match this architecture")
            for i, variable in enumerate(variables):
                data = f[group_name][f"{i:04d}"]
                if data.shape != tuple(variable.shape):
                    raise CheckpointError(
                        f"{path}: {data.attrs['path']} has shape {data.shape}, the model expects "
                        f"{tuple(variable.shape)} ({variable.path})")
                pending.append((variable, data[()]))
    # Assign only once everything has been checked, so a bad file leaves the model untouched.
    for variable, value in pending:
        variable.assign(value)


def _open(path):
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise CheckpointError(f"{path} is not an HDF5 file (is it a checkpoint of this project?)")
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise CheckpointError(f"{path} is an HDF5 file but not a checkpoint of this project")
    if f.attrs.get("version", 0) > VERSION:
        f.close()
        raise CheckpointError(f"{path} was written by a newer version of this project")
    return f


def checkpoint_name(step):
    return f"step_{step:08d}.h5"


def list_checkpoints(folder):
    """Checkpoints in `folder`, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder):
    found = list_checkpoints(folder)
    return found[-1] if found else None


def resolve_checkpoint(path):
    """A checkpoint file, or the latest checkpoint in a run folder."""
    path = Path(path)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f"no checkpoint (step_*.h5) in {path}")
        return latest
    return path


def prune_checkpoints(folder, keep):
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink()
