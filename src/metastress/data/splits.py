"""Class splits that name characters by identity ("Alphabet/characterNN").

Characters are sorted before a seeded shuffle, so a split depends only on its name and seed,
never on filesystem order: the same seed gives a byte-identical file on any machine.

- `paper`: the authors' protocol, all 1623 characters shuffled, 980 meta-train /
  220 meta-validation / 423 meta-test.
- `lake`: the 964 background characters for training (a seeded tenth held out for
  validation) and the 659 evaluation characters for testing (Lake et al., 2015).
"""

import json
from pathlib import Path

import numpy as np
import torch

from metastress.atomic import write_json
from metastress.data.prepare import CorruptInputError

SPLIT_PARTS = ("train", "validation", "test")
PAPER_SIZES = {"train": 980, "validation": 220, "test": 423}


def paper_split(characters: list[str], seed: int) -> dict[str, list[str]]:
    pool = np.array(sorted(characters))
    if len(pool) != sum(PAPER_SIZES.values()):
        raise ValueError(f"the paper split needs 1623 characters, the data has {len(pool)}")
    shuffled = pool[np.random.default_rng(seed).permutation(len(pool))].tolist()
    n_train, n_val = PAPER_SIZES["train"], PAPER_SIZES["validation"]
    return {
        "train": shuffled[:n_train],
        "validation": shuffled[n_train : n_train + n_val],
        "test": shuffled[n_train + n_val :],
    }


def lake_split(
    characters: list[str], background: list[bool], seed: int, validation_fraction: float
) -> dict[str, list[str]]:
    flag = dict(zip(characters, background, strict=True))
    train_pool = np.array(sorted(c for c in characters if flag[c]))
    shuffled = train_pool[np.random.default_rng(seed).permutation(len(train_pool))].tolist()
    n_val = round(len(shuffled) * validation_fraction)
    return {
        "train": shuffled[n_val:],
        "validation": shuffled[:n_val],
        "test": sorted(c for c in characters if not flag[c]),
    }


def make_split(
    processed: dict[str, np.ndarray], name: str, seed: int, validation_fraction: float = 0.1
) -> dict:
    characters = processed["characters"].tolist()
    if name == "paper":
        parts = paper_split(characters, seed)
    elif name == "lake":
        parts = lake_split(characters, processed["background"].tolist(), seed, validation_fraction)
    else:
        raise ValueError(f"unknown split {name!r}; choose 'paper' or 'lake'")
    return {"name": name, "seed": seed, **parts}


def write_split(split: dict, path: str | Path) -> None:
    write_json(path, split)


def read_split(path: str | Path) -> dict:
    """Load a split file and check that its parts are present and disjoint."""
    path = Path(path)
    fix = "delete it and run `metastress data split` (or `snakemake`) to regenerate it"
    try:
        split = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise CorruptInputError(f"{path} does not exist; run `metastress data split`") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptInputError(f"{path} is not valid JSON ({e}); {fix}") from e
    if not isinstance(split, dict):
        raise CorruptInputError(f"{path} holds a {type(split).__name__}, not a split; {fix}")
    missing = [part for part in SPLIT_PARTS if not isinstance(split.get(part), list)]
    if missing:
        raise CorruptInputError(f"{path} lacks the part(s) {missing}; {fix}")
    seen: dict[str, str] = {}
    for part in SPLIT_PARTS:
        if not all(isinstance(c, str) for c in split[part]):
            raise CorruptInputError(f"{path}: part {part!r} must list character names; {fix}")
        for character in split[part]:
            if character in seen:
                raise CorruptInputError(
                    f"{path}: character {character!r} is in both {seen[character]!r} and "
                    f"{part!r}; the parts of a split must be disjoint; {fix}"
                )
            seen[character] = part
    return split


def split_images(
    processed: dict[str, np.ndarray], split: dict, part: str, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The uint8 images (C, 20, 28, 28) of one part of a split, on `device`."""
    index = {name: i for i, name in enumerate(processed["characters"].tolist())}
    unknown = [c for c in split[part] if c not in index]
    if unknown:
        raise CorruptInputError(
            f"split {split.get('name')!r} names {len(unknown)} character(s) absent from the "
            f"processed data (first: {unknown[0]!r}); regenerate the split from this data"
        )
    rows = np.array([index[c] for c in split[part]], dtype=np.int64)
    return torch.from_numpy(processed["images"][rows]).to(device)
