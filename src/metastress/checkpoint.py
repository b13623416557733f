"""Checkpoints that carry weights, optimizer, step, RNG state and the config they belong to.

A checkpoint records the hash of its config; resuming under another config is refused with
the differing keys named, and a truncated, tampered or foreign file is a clear error, never a
crash deep inside torch nor silently wrong weights: torch.load does not check the CRC-32 that
its zip container stores for every record, so `load` checks them first.
"""

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import torch

from metastress.atomic import atomic_path


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: corrupt, foreign, or made under another config."""


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_difference(old: dict, new: dict) -> list[str]:
    """Lines 'key: old -> new' for every key whose value differs."""
    a, b = flatten(old), flatten(new)
    missing = object()
    return [
        f"{key}: {a.get(key, missing)!r} -> {b.get(key, missing)!r}".replace(
            repr(missing), "absent"
        )
        for key in sorted(set(a) | set(b))
        if a.get(key, missing) != b.get(key, missing)
    ]


def save(path: str | Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def verify_records(path: str | Path) -> None:
    """Raise unless every record of the (zip) checkpoint matches its stored CRC-32."""
    with zipfile.ZipFile(path) as zf:
        bad = zf.testzip()
    if bad is not None:
        raise ValueError(f"record {bad!r} fails its CRC-32 check")


def load(path: str | Path, regenerate: str) -> dict:
    """Read a checkpoint; `regenerate` tells the user how to rebuild it if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; {regenerate}")
    try:
        verify_records(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zipfile and torch raise many types for a damaged file
        raise CheckpointError(f"{path} is corrupt or truncated ({e}); {regenerate}") from e
    if not isinstance(state, dict) or "config_hash" not in state or "learner" not in state:
        raise CheckpointError(f"{path} is not a metastress checkpoint; {regenerate}")
    return state


def check_same_config(path: Path, state: dict, config: dict) -> None:
    if state["config_hash"] != config_hash(config):
        changes = "; ".join(config_difference(state["config"], config))
        raise CheckpointError(
            f"{path} was trained with another config ({changes}). Delete {path.parent} to "
            "start afresh with the new config, or restore the old params to resume it"
        )
