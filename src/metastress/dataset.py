"""One part of the class split (train, validation or test) as images on the run's device: what
training and evaluation sample their tasks from."""

from pathlib import Path

import torch
from torch import Tensor

from metastress.data.prepare import CorruptInputError, load_processed
from metastress.data.splits import read_split, split_images


def load_part(processed_path: Path, split_path: Path, part: str, device: torch.device) -> Tensor:
    """uint8 (characters, 20, 28, 28) of `part`, checked against the split file."""
    processed, split = load_processed(processed_path), read_split(split_path)
    try:
        return split_images(processed, split, part, device)
    except CorruptInputError as e:
        raise CorruptInputError(f"{split_path} does not fit {processed_path}: {e}") from e
