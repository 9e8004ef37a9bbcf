"""Self-describing HDF5 checkpoints: both networks, both optimizer states, the generator's weight
average (train.py --g-ema), progress and options.

Layout of one `.h5` file:
    attrs: format, version, config (JSON: the architecture, models/architecture.py), options (JSON:
           the resolved run options, options.TrainingConfig), state (JSON: step, epoch, position in
           the epoch, seconds of training)
    <group per network or optimizer>/<index>: one dataset per variable, attr "path" = variable path
Files are written to a temporary name and renamed (util/atomic.py), so a crash never leaves a
broken checkpoint; each group's sha256 catches damage done to a file afterwards.
"""
import hashlib
import json
import re
from pathlib import Path

import h5py
import numpy as np

from models.architecture import Architecture, InvalidArchitecture, UnknownNetwork
from util.atomic import atomic_write

FORMAT = "colorgan-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.h5$")
DAMAGED_SUFFIX = ".damaged"
EMA_GROUP = "generator_ema"  # the group of the generator's weight average (train.py --g-ema)
# What a checkpoint's state holds when it predates the entry (the architecture's own defaults are
# models/architecture.py's, the options' options.py's stored_options).
STATE_DEFAULTS = {"epoch": 0, "position": 0, "seconds": 0.0, "ema_updates": 0}


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable, foreign or for another architecture."""


class DamagedCheckpoint(CheckpointError):
    """A step_*.h5 that cannot be read back whole (truncated, overwritten, keys or sums wrong) or is
    not a checkpoint at all: a resume sets it aside and takes the next older one."""


def _digest(arrays):
    """sha256 of a group's variables: dtype, shape and bytes of each, in order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def sha256(path):
    """The SHA-256 of a file's bytes, hex (export.json records it; loading checks it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checkpoint(path, variable_groups, architecture, options, state):
    """Atomically writes `variable_groups` ({group: [variables]}) and the JSON metadata to `path`;
    each group carries the sha256 of its variables, checked whenever it is read back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["config"] = json.dumps(architecture.to_json())
            f.attrs["options"] = json.dumps(options)
            f.attrs["state"] = json.dumps(state)
            for group_name, variables in variable_groups.items():
                group = f.create_group(group_name)
                arrays = [np.asarray(v.numpy()) for v in variables]
                for i, (variable, array) in enumerate(zip(variables, arrays)):
                    data = group.create_dataset(f"{i:04d}", data=array)
                    data.attrs["path"] = variable.path
                group.attrs["sha256"] = _digest(arrays)

    atomic_write(path, write, mode=None)


def read_metadata(path):
    """Returns (architecture, options, state) of a checkpoint, or raises CheckpointError."""
    with _open(path) as f:
        try:
            stored, options, state = (json.loads(f.attrs[key]) for key in ("config", "options", "state"))
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise DamagedCheckpoint(f"{path} is damaged: unreadable metadata ({e})") from None
    try:
        architecture = Architecture.from_json(stored)
    except UnknownNetwork as e:  # written by newer code
        raise CheckpointError(f"{path} {e}") from None
    except InvalidArchitecture as e:
        raise DamagedCheckpoint(f"{path} has an invalid architecture ({e})") from None
    if not (isinstance(options, dict) and isinstance(state, dict) and isinstance(state.get("step"), int)
            and state["step"] >= 0):
        raise DamagedCheckpoint(f"{path} is damaged: its options or state are not what this project writes")
    return architecture, options, {**STATE_DEFAULTS, **state}


def group_names(path):
    """The variable groups a checkpoint holds (generator, g_optimizer, ...)."""
    with _open(path) as f:
        return [name for name in f if isinstance(f[name], h5py.Group)]


def restore_variables(path, variable_groups):
    """Assigns every variable of `variable_groups` from the checkpoint, after checking all fit and
    that each group's sha256 matches (a file damaged in the middle must not load silently)."""
    with _open(path) as f:
        pending = []
        try:
            for group_name, variables in variable_groups.items():
                if group_name not in f or len(f[group_name]) != len(variables):
                    # the architecture (config) matched: variables are missing, the file is damaged
                    raise DamagedCheckpoint(f"{path} is damaged: its {group_name} does not have the "
                                            f"{len(variables)} variables of its architecture")
                arrays = []
                for i, variable in enumerate(variables):
                    data = f[group_name][f"{i:04d}"]
                    if data.shape != tuple(variable.shape):
                        raise CheckpointError(
                            f"{path}: {data.attrs['path']} has shape {data.shape}, the model expects "
                            f"{tuple(variable.shape)} ({variable.path})")
                    arrays.append(data[()])
                    pending.append((variable, arrays[-1]))
                stored = f[group_name].attrs.get("sha256")
                if stored is not None and stored != _digest(arrays):
                    raise DamagedCheckpoint(f"{path} is damaged: the {group_name} variables do not match "
                                            f"their checksum")
        except CheckpointError:
            raise
        except (KeyError, OSError, ValueError, TypeError, RuntimeError) as e:
            raise DamagedCheckpoint(f"{path} is damaged: {type(e).__name__}: {e}") from None
    # Assign only once everything has been checked, so a bad file leaves the model untouched.
    for variable, value in pending:
        variable.assign(value)


def check_readable(path):
    """A CheckpointError, not a DamagedCheckpoint (nothing is set aside), where the file cannot be
    opened for reading (its permissions, a flaky mount)."""
    try:
        open(path, "rb").close()
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e} (check its permissions)") from None


def _open(path):
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    check_readable(path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        with open(path, "rb") as f:
            if f.read(8) == b"\x89HDF\r\n\x1a\n":
                raise DamagedCheckpoint(f"{path} is damaged (a truncated or overwritten HDF5 file)") from None
        raise DamagedCheckpoint(f"{path} is not an HDF5 file (is it a checkpoint of this project?)") from None
    try:
        fmt, version = f.attrs.get("format"), f.attrs.get("version", 0)
    except (OSError, KeyError, TypeError) as e:
        f.close()
        raise DamagedCheckpoint(f"{path} is damaged: unreadable attributes ({e})") from None
    if fmt != FORMAT:
        f.close()
        raise DamagedCheckpoint(f"{path} is an HDF5 file but not a checkpoint of this project")
    if version > VERSION:
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


EXPORTED_GENERATOR = "generator.keras"  # export.py's; usable wherever a checkpoint is read for inference


def resolve_checkpoint(path):
    """A checkpoint file, the latest checkpoint in a run folder, or an export folder's generator.keras."""
    path = Path(path)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None and (path / EXPORTED_GENERATOR).is_file():
            return path / EXPORTED_GENERATOR
        if latest is None:
            raise CheckpointError(f"no checkpoint (step_*.h5 or {EXPORTED_GENERATOR}) in {path}")
        return latest
    return path


def prune_checkpoints(folder, keep):
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink()


def set_aside(path):
    """Renames a damaged checkpoint out of the way (kept, for inspection); returns the new path."""
    path = Path(path)
    aside = path.with_name(path.name + DAMAGED_SUFFIX)
    path.replace(aside)
    return aside
