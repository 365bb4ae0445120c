"""Parity of ``PathwiseOptimizer(compat="reference")`` with scrapl-loss 0.1.0's P-Adam/P-SAGA hooks.

The reference's smallest configuration (7 paths) drives two identical tiny models. Model A has the
reference's hooks (``attach_params``). Model B has our hooks, whose context reads the reference's
own counters (current path, ``scrapl_t``, ``len(path_counts)``, training flag); its loss is the
reference's ``calc_dist``, which computes the same distance without touching those counters. A
third check feeds the raw path gradients (the reference's hooks pass them through in eval mode)
to ``process_grad`` directly. The script covers first visits, revisits, two backward passes through
one forward, two paths accumulated before one SGD step, and an eval-mode step.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from scrapl.optim import HookContext, PathwiseHooks, PathwiseOptimizer

N = 8096
RTOL = 1e-5

# (kind, paths): "step" = one forward/backward; "double" = two backward passes through one
# forward; "accum" = two forward/backward pairs before the SGD step; "eval" = eval-mode step.
SCRIPT = [
    ("step", [2]),
    ("step", [5]),
    ("step", [2]),
    ("double", [5]),
    ("accum", [0, 2]),
    ("eval", [6]),
    ("step", [6]),
    ("step", [2]),
    ("step", [0]),
]


class TinyDecoder(nn.Module):
    """A fixed code -> (1, 1, N) signal, with 4 parameter tensors (8 + 2 + 4N + N weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.code = nn.Linear(4, 2)
        self.out = nn.Linear(2, N)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(torch.tanh(self.code(z)))).view(1, 1, N)


def _close(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


@pytest.fixture(scope="module")
def setup(scrapl_ref):
    torch.manual_seed(1)
    ref = scrapl_ref.SCRAPLLoss(shape=N, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)
    assert ref.n_paths == 7
    model_a = TinyDecoder()
    model_b = copy.deepcopy(model_a)
    z = torch.randn(1, 4)
    target = torch.randn(1, 1, N)
    return ref, model_a, model_b, z, target


def test_reference_compat_matches_scrapl_loss_step_for_step(setup):
    ref, model_a, model_b, z, target = setup
    ref.attach_params(model_a.parameters())
    ours = PathwiseOptimizer(model_b.parameters(), ref.n_paths, compat="reference")
    direct = PathwiseOptimizer(model_b.parameters(), ref.n_paths, compat="reference")
    context = lambda: HookContext(  # noqa: E731
        ref.curr_path_idx, ref.scrapl_t, len(ref.path_counts), ref.training
    )
    hooks = PathwiseHooks(ours, context)
    sgd_a = torch.optim.SGD(model_a.parameters(), lr=1e-3)
    sgd_b = torch.optim.SGD(model_b.parameters(), lr=1e-3)
    params_b = list(model_b.parameters())
    try:
        for kind, paths in SCRIPT:
            sgd_a.zero_grad()
            sgd_b.zero_grad()
            expected_direct = [torch.zeros_like(p) for p in params_b]
            for path in paths:
                # raw gradients of this path's loss at model B's weights: in eval mode our
                # hooks on model B pass them through (the reference's are on model A only)
                ref.eval()
                raw = torch.autograd.grad(ref.calc_dist(model_b(z), target, path)[0], params_b)
                ref.train(kind != "eval")
                loss_a = ref(model_a(z), target, path_idx=path)  # counts the step
                loss_b = ref.calc_dist(model_b(z), target, path)[0]
                n_back = 2 if kind == "double" else 1
                for j in range(n_back):
                    loss_a.backward(retain_graph=j + 1 < n_back)
                    loss_b.backward(retain_graph=j + 1 < n_back)
                    for i, g in enumerate(raw):
                        if kind == "eval":
                            expected_direct[i] += g
                        else:
                            expected_direct[i] += direct.process_grad(
                                i, g, path, ref.scrapl_t, len(ref.path_counts)
                            )
            for pa, pb, e in zip(model_a.parameters(), params_b, expected_direct, strict=True):
                assert _close(pb.grad, pa.grad) < RTOL, (kind, paths)
                assert _close(e, pa.grad) < RTOL, (kind, paths)
            sgd_a.step()
            sgd_b.step()
        for pa, pb in zip(model_a.parameters(), params_b, strict=True):
            assert _close(pb, pa) < RTOL
    finally:
        hooks.remove()
        ref.attach_params([])
