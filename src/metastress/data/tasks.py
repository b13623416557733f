"""N-way K-shot episodes sampled by tensor indexing on the training device.

The split's images live on the device as one uint8 tensor (C, 20, 28, 28); a meta-batch is
drawn with a `torch.Generator`, so sampling costs a few index ops and no per-image Python.
Every class of a task is rotated by its own random multiple of 90 degrees (class
augmentation, as in MAML); a rotated character counts as a new class.

Omniglot draws black strokes on white; images become tensors as ink 1 on background 0
(`1 - x`), as the authors', MAML's and learn2learn's pipelines feed them, so that the Conv-4's
zero padding continues the background instead of drawing a dark frame at every layer.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

IMAGES_PER_CHARACTER = 20


@dataclass(frozen=True)
class Episode:
    """A meta-batch of B tasks, N-way, K support and Q query images per class.

    Images are float32 in [0, 1], ink 1 on background 0; labels are int64 in [0, N).
    """

    support_x: Tensor  # (B, N*K, 1, 28, 28)
    support_y: Tensor  # (B, N*K)
    query_x: Tensor  # (B, N*Q, 1, 28, 28)
    query_y: Tensor  # (B, N*Q)
    n_way: int

    def __len__(self) -> int:
        return self.support_x.shape[0]

    def tasks(self, start: int, stop: int) -> "Episode":
        """The tasks start..stop-1 as an episode of their own (batch dim kept)."""
        return Episode(
            self.support_x[start:stop],
            self.support_y[start:stop],
            self.query_x[start:stop],
            self.query_y[start:stop],
            self.n_way,
        )

    def to(self, device: torch.device | str) -> "Episode":
        return Episode(
            self.support_x.to(device),
            self.support_y.to(device),
            self.query_x.to(device),
            self.query_y.to(device),
            self.n_way,
        )


class TaskSampler:
    """Samples episodes from the characters of one split.

    Args:
        images (Tensor): uint8 (C, 20, 28, 28), the split's characters as stored (black ink on
            white), on the sampling device.
        n_way, k_shot, n_query (int): classes per task, support and query images per class.
        rotate (bool, optional, default=True): rotate each class by a random multiple of 90 deg.
    """

    def __init__(self, images: Tensor, n_way: int, k_shot: int, n_query: int, rotate: bool = True):
        n_characters = images.shape[0]
        if images.dim() != 4 or images.shape[1] != IMAGES_PER_CHARACTER:
            raise ValueError(f"images must be (characters, 20, H, W), got {tuple(images.shape)}")
        if n_way < 1 or k_shot < 1 or n_query < 1:
            raise ValueError(
                f"n_way, k_shot and n_query must be >= 1, got {n_way}, {k_shot}, {n_query}"
            )
        if n_way > n_characters:
            raise ValueError(
                f"{n_way}-way tasks need {n_way} classes but the split has only {n_characters}; "
                "lower n_way or use a split with more classes"
            )
        if k_shot + n_query > IMAGES_PER_CHARACTER:
            raise ValueError(
                f"k_shot + n_query = {k_shot} + {n_query} exceeds the {IMAGES_PER_CHARACTER} "
                "images of an Omniglot character; lower k_shot or n_query"
            )
        self.images = images
        self.n_way, self.k_shot, self.n_query, self.rotate = n_way, k_shot, n_query, rotate

    @property
    def device(self) -> torch.device:
        return self.images.device

    def sample(self, batch: int, generator: torch.Generator) -> Episode:
        """Draw `batch` tasks; the generator must live on the sampling device."""
        B, N, K, Q = batch, self.n_way, self.k_shot, self.n_query
        H, W = self.images.shape[2:]
        x = self._draw(batch, generator)  # (B, N, K+Q, 1, H, W)
        labels = self._labels(batch)  # (B, N, K+Q)
        return Episode(
            support_x=x[:, :, :K].reshape(B, N * K, 1, H, W),
            support_y=labels[:, :, :K].reshape(B, N * K),
            query_x=x[:, :, K:].reshape(B, N * Q, 1, H, W),
            query_y=labels[:, :, K:].reshape(B, N * Q),
            n_way=N,
        )

    def episode_buffers(self, batch: int) -> Episode:
        """Tensors that `sample_into` fills with meta-batches of `batch` tasks: fixed
        addresses, which a captured CUDA graph reads (engine/graphs.py)."""
        B, N, K, Q = batch, self.n_way, self.k_shot, self.n_query
        H, W = self.images.shape[2:]
        labels = self._labels(batch)  # (B, N, K+Q)
        images = {"dtype": torch.float32, "device": self.device}
        return Episode(
            support_x=torch.zeros(B, N * K, 1, H, W, **images),
            support_y=labels[:, :, :K].reshape(B, N * K).clone(),  # own memory, not a view
            query_x=torch.zeros(B, N * Q, 1, H, W, **images),
            query_y=labels[:, :, K:].reshape(B, N * Q).clone(),
            n_way=N,
        )

    def sample_into(self, buffers: Episode, generator: torch.Generator) -> None:
        """Draw into `episode_buffers`' tensors the episode that `sample` would return for
        this generator state (the same random draws, copied in place)."""
        B, N, K, Q = len(buffers), self.n_way, self.k_shot, self.n_query
        H, W = self.images.shape[2:]
        expected = (B, N * K, 1, H, W), (B, N * Q, 1, H, W)
        if (buffers.support_x.shape, buffers.query_x.shape) != expected:
            raise ValueError(
                f"buffers hold support {tuple(buffers.support_x.shape)} and query "
                f"{tuple(buffers.query_x.shape)} images, this sampler draws {expected[0]} and "
                f"{expected[1]}; make them with this sampler's episode_buffers({B})"
            )
        x = self._draw(B, generator)  # (B, N, K+Q, 1, H, W)
        buffers.support_x.view(B, N, K, 1, H, W).copy_(x[:, :, :K])
        buffers.query_x.view(B, N, Q, 1, H, W).copy_(x[:, :, K:])
        labels = self._labels(B)  # constant per setting; written so any buffers come out whole
        buffers.support_y.view(B, N, K).copy_(labels[:, :, :K])
        buffers.query_y.view(B, N, Q).copy_(labels[:, :, K:])

    def _draw(self, batch: int, generator: torch.Generator) -> Tensor:
        """The images of `batch` tasks as ink, (B, N, K+Q, 1, H, W), class by class."""
        B, N, K, Q = batch, self.n_way, self.k_shot, self.n_query
        C = self.images.shape[0]
        dev = self.device
        classes = torch.rand(B, C, generator=generator, device=dev).argsort(dim=1)[:, :N]  # (B, N)
        draws = torch.rand(B, N, IMAGES_PER_CHARACTER, generator=generator, device=dev)
        picks = draws.argsort(dim=2)[:, :, : K + Q]  # (B, N, K+Q)
        x = self.images[classes[:, :, None], picks]  # (B, N, K+Q, H, W)
        if self.rotate:
            quarter_turns = torch.randint(0, 4, (B, N), generator=generator, device=dev)
            x = rotate_quarter_turns(x, quarter_turns)
        return to_ink(x).unsqueeze(3)  # (B, N, K+Q, 1, H, W)

    def _labels(self, batch: int) -> Tensor:
        """Class labels (B, N, K+Q): image j of class n is labelled n."""
        N, KQ = self.n_way, self.k_shot + self.n_query
        return torch.arange(N, device=self.device)[None, :, None].expand(batch, N, KQ)

    def fixed_tasks(self, count: int, seed: int, batch: int) -> list[Episode]:
        """`count` tasks that depend only on (images, setting, seed): the same for every model.

        Task i comes from its own generator seeded with (seed, i), so the list does not depend
        on `batch`, which only groups tasks for speed.
        """
        tasks = []
        for index in range(count):
            generator = torch.Generator(device=self.device).manual_seed(seed * 1_000_003 + index)
            tasks.append(self.sample(1, generator))
        return [concat(tasks[i : i + batch]) for i in range(0, count, batch)]


def to_ink(x: Tensor) -> Tensor:
    """uint8 greyscale (white 255 background) -> float32 ink intensity: stroke 1, background 0."""
    return (255 - x).to(torch.float32).div_(255.0)


def rotate_quarter_turns(x: Tensor, quarter_turns: Tensor) -> Tensor:
    """Rotate x (B, N, ..., H, W) counter-clockwise by quarter_turns (B, N) * 90 degrees."""
    out = x
    for turns in (1, 2, 3):
        mask = (quarter_turns == turns).view(*quarter_turns.shape, *([1] * (x.dim() - 2)))
        out = torch.where(mask, torch.rot90(x, turns, dims=(-2, -1)), out)
    return out


def concat(episodes: list[Episode]) -> Episode:
    """Stack single- or multi-task episodes of one setting into one meta-batch."""
    return Episode(
        torch.cat([e.support_x for e in episodes]),
        torch.cat([e.support_y for e in episodes]),
        torch.cat([e.query_x for e in episodes]),
        torch.cat([e.query_y for e in episodes]),
        episodes[0].n_way,
    )
