"""Path sampling: a categorical distribution over scattering paths, seeded and resumable.

Draws are bit-compatible with scrapl-loss 0.1.0: ``torch.multinomial(probs, 1)`` on float64 CPU
probabilities, from torch's global generator when no seed is given (or from the sampler's own
``generator``, if it was given one), or from a private generator re-seeded with ``seed`` (the
global RNG is then left untouched). With ``sample_all_paths_first``, every path is first drawn
once, in a random order without replacement (``torch.randint(0, n_left, (1,))`` picks the next
one).
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from torch import Tensor

from ._checks import as_bool, as_int, as_int_in

__all__ = ["PathSampler", "check_probs"]


def check_probs(
    probs: object, n_paths: int, *, atol: float = 1e-6, min_prob: float = 0.0, name: str = "probs"
) -> Tensor:
    """Validate a path distribution and return it as a float64 CPU tensor.

    Args:
        probs: the distribution, shape ``(n_paths,)``, floating point.
        n_paths: the number of paths ``P``.
        atol: allowed ``|sum(probs) - 1|`` (default 1e-6).
        min_prob: the floor every entry must reach, up to 1e-12 (default 0).
        name: how to call ``probs`` in error messages.

    Returns:
        ``probs`` as float64 on the CPU.

    Raises:
        TypeError: if ``probs`` is not a floating-point tensor.
        ValueError: if its shape is not ``(n_paths,)``, an entry is not finite, negative or below
            ``min_prob``, or the entries do not sum to 1 within ``atol``.

    Example:
        >>> check_probs(torch.tensor([0.25, 0.75]), 2).dtype
        torch.float64
    """
    if not isinstance(probs, Tensor) or not probs.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point torch.Tensor, got "
            f"{probs.dtype if isinstance(probs, Tensor) else type(probs).__name__}"
        )
    if tuple(probs.shape) != (n_paths,):
        raise ValueError(f"{name} must have shape ({n_paths},), got {tuple(probs.shape)}")
    probs = probs.detach().to("cpu", torch.float64)
    if not torch.isfinite(probs).all():
        raise ValueError(
            f"{name} must be finite, got non-finite entries at "
            f"{torch.nonzero(~torch.isfinite(probs)).flatten().tolist()[:5]}"
        )
    low = probs.min().item()
    if low < 0:
        raise ValueError(f"{name} must be non-negative, got min {low:.3g}")
    if low < min_prob - 1e-12:
        raise ValueError(f"{name} has entries below the floor {min_prob:.6g} (min {low:.6g})")
    total = probs.sum().item()
    if not math.isclose(total, 1.0, abs_tol=atol):
        raise ValueError(f"{name} must sum to 1 (within {atol:g}), got sum {total:.12g}")
    return probs


class PathSampler:
    """Sample path indices from a distribution over ``n_paths`` paths and count training visits.

    Args:
        n_paths: number of paths ``P``.
        sample_all_paths_first: visit every path once (random order, no replacement) before
            sampling from ``probs``.
        generator: a CPU ``torch.Generator`` for unseeded draws, so that they are reproducible
            without reseeding torch's global RNG (default None: the global RNG, as scrapl-loss
            0.1.0). It is used as given (seed it yourself) and its state is saved by
            :meth:`state_dict`.

    Attributes:
        probs: float64 CPU tensor of shape ``(P,)`` (uniform at first).
        path_counts: ``defaultdict(int)``, number of training-mode draws per path.
        unsampled_paths: paths not yet drawn in the all-paths-first phase.
        generator: the private generator of seeded draws (re-seeded at every seeded draw).
        draw_generator: the generator of unseeded draws, or None for the global RNG.

    Example:
        >>> a = PathSampler(5, generator=torch.Generator().manual_seed(0))
        >>> b = PathSampler(5, generator=torch.Generator().manual_seed(0))
        >>> [a.sample() for _ in range(3)] == [b.sample() for _ in range(3)]  # global RNG untouched
        True
    """

    def __init__(
        self, n_paths: int, *, sample_all_paths_first: bool = False, generator: torch.Generator | None = None
    ) -> None:
        self.n_paths = as_int_in("n_paths", n_paths, 1)
        self.sample_all_paths_first = as_bool("sample_all_paths_first", sample_all_paths_first)
        if generator is not None and (
            not isinstance(generator, torch.Generator) or generator.device.type != "cpu"
        ):
            raise TypeError(f"generator must be a CPU torch.Generator or None, got {generator!r}")
        self.probs = torch.full((n_paths,), 1.0 / n_paths, dtype=torch.float64)
        self.path_counts: defaultdict[int, int] = defaultdict(int)
        self.unsampled_paths = list(range(n_paths))
        self.generator = torch.Generator("cpu")
        self.draw_generator = generator

    def _generator(self, seed: int | None) -> torch.Generator | None:
        if seed is None:
            return self.draw_generator
        try:
            self.generator.manual_seed(as_int("seed", seed))
        except TypeError:
            raise TypeError(f"seed must be an int or None, got {seed!r}") from None
        return self.generator

    def in_first_pass(self) -> bool:
        """Whether the all-paths-first phase is still running."""
        return (
            self.sample_all_paths_first
            and len(self.path_counts) < self.n_paths
            and len(self.unsampled_paths) > 0
        )

    def sample(self, seed: int | None = None, *, training: bool = True) -> int:
        """Draw one path index.

        In the all-paths-first phase the next unvisited path is drawn uniformly; it is removed from
        :attr:`unsampled_paths` only when ``training`` (evaluation calls do not use up the phase,
        unlike the reference). Otherwise ``multinomial(probs, 1)``.
        """
        gen = self._generator(seed)
        if self.in_first_pass():
            j = int(torch.randint(0, len(self.unsampled_paths), (1,), generator=gen).item())
            return self.unsampled_paths.pop(j) if training else self.unsampled_paths[j]
        return int(torch.multinomial(self.probs, 1, generator=gen).item())

    def record(self, path_idx: int) -> None:
        """Count one training-mode visit of ``path_idx``."""
        self.path_counts[path_idx] += 1
        if self.sample_all_paths_first and path_idx in self.unsampled_paths:
            self.unsampled_paths.remove(path_idx)

    def set_probs(self, probs: Tensor, *, name: str = "probs", atol: float = 1e-6) -> None:
        """Replace the distribution (validated: shape ``(P,)``, non-negative, sums to 1 within
        ``atol``)."""
        self.probs = check_probs(probs, self.n_paths, name=name, atol=atol).clone()  # owned

    def clear(self) -> None:
        """Forget visits and restart the all-paths-first phase (``probs`` are kept)."""
        self.path_counts = defaultdict(int)
        self.unsampled_paths = list(range(self.n_paths))

    def state_dict(self) -> dict:
        """Plain, ``weights_only``-loadable state: counts, first-pass list, probs, the generators'
        states (``draw_generator`` None when unseeded draws use the global RNG)."""
        draw = self.draw_generator
        return {
            "path_counts": {int(k): int(v) for k, v in self.path_counts.items()},
            "unsampled_paths": list(self.unsampled_paths),
            "probs": self.probs.clone(),
            "generator": self.generator.get_state(),
            "draw_generator": None if draw is None else draw.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (validating ``probs``).

        A saved ``draw_generator`` state is restored into this sampler's generator (one is created
        if it has none, so that a resumed run draws what the saved one would have); older states
        without it leave the generator as it is.
        """
        probs = check_probs(state["probs"], self.n_paths, name="probs")
        self.path_counts = defaultdict(int, {int(k): int(v) for k, v in state["path_counts"].items()})
        self.unsampled_paths = [int(p) for p in state["unsampled_paths"]]
        self.probs = probs
        if "generator" in state:
            self.generator.set_state(state["generator"])
        if state.get("draw_generator") is not None:
            if self.draw_generator is None:
                self.draw_generator = torch.Generator("cpu")
            self.draw_generator.set_state(state["draw_generator"])
