"""The sound-matching data: θ drawn uniformly in ``[0, 1]²`` and one time shift per example.

The split is fixed by a seed, so every run of a comparison sees the same training, validation and
test examples. Audio is synthesized on the fly (a chirplet costs microseconds), so a split is just
two small tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .synth import ChirpletSynth

__all__ = ["Split", "DemoData", "make_data"]


@dataclass(frozen=True)
class Split:
    """Normalized parameters ``theta`` ``(n, 2)`` and integer shifts ``shifts`` ``(n,)``."""

    theta: Tensor
    shifts: Tensor

    def __len__(self) -> int:
        return self.theta.shape[0]

    def batch(self, idx: Tensor) -> Split:
        """The examples at ``idx``."""
        return Split(self.theta[idx], self.shifts[idx])


@dataclass(frozen=True)
class DemoData:
    """The train / validation / test splits of one comparison."""

    train: Split
    val: Split
    test: Split


def _split(n: int, synth: ChirpletSynth, gen: torch.Generator) -> Split:
    theta = torch.rand((n, synth.n_theta), generator=gen)
    return Split(theta, synth.random_shifts(n, generator=gen))


def make_data(synth: ChirpletSynth, *, n_train: int, n_val: int, n_test: int, seed: int) -> DemoData:
    """Draw the three splits from ``seed`` (θ uniform in ``[0, 1]``, shifts uniform integers).

    Example:
        >>> data = make_data(ChirpletSynth(n_samples=4096), n_train=8, n_val=2, n_test=2, seed=0)
        >>> len(data.train), tuple(data.val.theta.shape)
        (8, (2, 2))
    """
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    gen = torch.Generator().manual_seed(seed)
    return DemoData(_split(n_train, synth, gen), _split(n_val, synth, gen), _split(n_test, synth, gen))
