"""Training loops of the sound-matching comparison: one loop, three objectives.

* ``audio`` objectives (SCRAPL, MSS): ``L(synth(θ̂, δ̂), x)``, the reconstruction drawn with its own
  random shift ``δ̂``, independent of the input's (unsupervised: θ is never seen).
* ``supervised``: ``|θ̂ − θ|`` on the normalized scale (the best the encoder can do).

Every run starts from the same encoder weights and sees the same batches (both drawn from ``seed``),
so differences between runs come from the objective and its optimizer only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .data import DemoData, Split
from .synth import ChirpletSynth

__all__ = ["Objective", "RunHistory", "audio_objective", "supervised_objective", "evaluate", "train_run"]

# objective(theta_hat, batch, x) -> scalar loss
Objective = Callable[[Tensor, Split, Tensor], Tensor]


@dataclass
class RunHistory:
    """What one training run recorded.

    Attributes:
        name: the run's name.
        steps: the steps at which the validation error was measured (0: before training).
        val_l1: per step, the validation L1 error of (AM, FM) on the normalized scale.
        train_loss: the training loss of every step.
        test_l1: the test L1 error of (AM, FM) after training.
        seconds: wall time of the run (training and evaluation).
        extra: anything else worth saving (e.g. the path visits of a SCRAPL run).
    """

    name: str
    steps: list[int] = field(default_factory=list)
    val_l1: list[tuple[float, float]] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_l1: tuple[float, float] = (math.nan, math.nan)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def audio_objective(
    loss_fn: Callable[[Tensor, Tensor], Tensor], synth: ChirpletSynth, *, generator: torch.Generator
) -> Objective:
    """``loss_fn(synth(θ̂, δ̂), x)`` with fresh shifts ``δ̂`` drawn from ``generator`` at each call."""

    def objective(theta_hat: Tensor, batch: Split, x: Tensor) -> Tensor:
        shifts = synth.random_shifts(theta_hat.shape[0], generator=generator)
        return loss_fn(synth(theta_hat, shifts.to(theta_hat.device)), x)

    return objective


def supervised_objective(theta_hat: Tensor, batch: Split, x: Tensor) -> Tensor:
    """Mean ``|θ̂ − θ|`` over the batch and both parameters."""
    return (theta_hat - batch.theta.to(theta_hat.device)).abs().mean()


@torch.no_grad()
def evaluate(encoder: nn.Module, synth: ChirpletSynth, split: Split, *, batch_size: int = 256) -> Tensor:
    """Mean absolute error of each parameter on ``split``, normalized scale; shape ``(2,)``."""
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    errors = []
    for start in range(0, len(split), batch_size):
        b = split.batch(torch.arange(start, min(start + batch_size, len(split))))
        x = synth(b.theta.to(device), b.shifts.to(device))
        errors.append((encoder(x) - b.theta.to(device)).abs().cpu())
    encoder.train(was_training)
    return torch.cat(errors).mean(dim=0)


def train_run(
    name: str,
    encoder: nn.Module,
    synth: ChirpletSynth,
    data: DemoData,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    batch_size: int,
    eval_every: int,
    seed: int,
    decay_frac: float = 0.0,
    after_backward: Callable[[], None] | None = None,
    progress: bool = True,
    position: int | None = None,
) -> RunHistory:
    """Train ``encoder`` for ``steps`` steps on ``objective``; validate every ``eval_every`` steps.

    Args:
        name: run name (progress bar, history).
        encoder, synth, data: the model, the synthesizer, the splits.
        objective: the loss of a batch (see :func:`audio_objective`, :func:`supervised_objective`).
        optimizer: steps the encoder's parameters.
        steps, batch_size, eval_every: schedule.
        decay_frac: the learning rate of every parameter group is held for the first
            ``(1 − decay_frac) · steps`` steps, then decays linearly towards 0:
            ``lr_k = lr · min(1, (steps − k + 1) / (decay_frac · steps))`` at step ``k`` (1-based;
            the last step uses ``lr / (decay_frac · steps)``).
        seed: draws the batches (the same sequence for every run with this seed).
        after_backward: called between ``backward()`` and ``optimizer.step()`` (e.g. a path-wise
            optimizer's explicit step).
        progress: show a tqdm bar.
        position: the bar's line (runs in parallel processes each get their own).

    Returns:
        The :class:`RunHistory`, with the test error of the trained encoder.
    """
    device = next(encoder.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    hist = RunHistory(name)
    t0 = time.perf_counter()

    def validate(step: int) -> None:
        hist.steps.append(step)
        hist.val_l1.append(tuple(evaluate(encoder, synth, data.val).tolist()))

    if not 0.0 <= decay_frac <= 1.0:
        raise ValueError(f"decay_frac must be in [0, 1], got {decay_frac!r}")
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    decay_steps = decay_frac * steps

    validate(0)
    encoder.train()
    bar = tqdm(
        range(1, steps + 1), desc=f"{name:>17}", disable=not progress, dynamic_ncols=True, position=position
    )
    for step in bar:
        b = data.train.batch(torch.randint(len(data.train), (batch_size,), generator=gen))
        x = synth(b.theta.to(device), b.shifts.to(device))
        loss = objective(encoder(x), b, x)
        optimizer.zero_grad(set_to_none=True)
        if decay_steps > 0:
            factor = min(1.0, (steps - step + 1) / decay_steps)
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = lr * factor
        loss.backward()
        if after_backward is not None:
            after_backward()
        optimizer.step()
        hist.train_loss.append(loss.item())
        if step % eval_every == 0 or step == steps:
            validate(step)
            am, fm = hist.val_l1[-1]
            bar.set_postfix_str(f"val L1 AM {1000 * am:.0f}‰ FM {1000 * fm:.0f}‰")
    bar.close()
    hist.test_l1 = tuple(evaluate(encoder, synth, data.test).tolist())
    hist.seconds = time.perf_counter() - t0
    return hist
