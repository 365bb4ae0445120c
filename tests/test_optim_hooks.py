"""PathwiseHooks: the hook adapter equals the explicit API; eval, frozen, expanded, removal, AMP."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

import scrapl.optim.hooks as hooks_module
from scrapl.optim import HookContext, PathwiseHooks, PathwiseOptimizer

N_PATHS = 4
PATHS = [2, 0, 2, 3, 3, 1, 0, 2]
X = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
Y = torch.randn(N_PATHS, 8, 3, generator=torch.Generator().manual_seed(1))


def _model() -> nn.Module:
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(6, 4), nn.PReLU(), nn.Linear(4, 3))


def _path_loss(model: nn.Module, path: int) -> torch.Tensor:
    return ((model(X) - Y[path]) ** 2).mean()


class Context:
    """Mutable stand-in for the loss's counters."""

    def __init__(self, training: bool = True) -> None:
        self.path: int | None = None
        self.k = 0
        self.seen: set[int] = set()
        self.training = training

    def visit(self, path: int) -> None:
        self.path, self.k = path, self.k + 1
        self.seen.add(path)

    def __call__(self) -> HookContext:
        return HookContext(self.path, self.k, len(self.seen), self.training)


def test_doctests():
    assert doctest.testmod(hooks_module, raise_on_error=False).failed == 0


@pytest.mark.parametrize("compat", ["paper", "reference"])
def test_hooks_and_explicit_api_give_identical_parameters(compat):
    hooked, explicit = _model(), _model()
    ctx = Context()
    h_opt = PathwiseOptimizer(hooked.parameters(), N_PATHS, grad_mult=1e3, compat=compat)
    e_opt = PathwiseOptimizer(explicit.parameters(), N_PATHS, grad_mult=1e3, compat=compat)
    h_sgd = torch.optim.SGD(hooked.parameters(), lr=0.05)
    e_sgd = torch.optim.SGD(explicit.parameters(), lr=0.05)
    with PathwiseHooks(h_opt, ctx):
        for path in PATHS:
            h_sgd.zero_grad()
            e_sgd.zero_grad()
            ctx.visit(path)
            _path_loss(hooked, path).backward()
            _path_loss(explicit, path).backward()
            e_opt.step(path)
            h_sgd.step()
            e_sgd.step()
    for p, q in zip(hooked.parameters(), explicit.parameters(), strict=True):
        assert torch.equal(p, q)
    assert h_opt.step_count == e_opt.step_count == len(PATHS)


def test_eval_mode_passes_gradients_through_untouched():
    model = _model()
    opt = PathwiseOptimizer(model.parameters(), N_PATHS)
    ctx = Context(training=False)
    ctx.visit(1)
    with PathwiseHooks(opt, ctx):
        _path_loss(model, 1).backward()
    hooked = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    _path_loss(model, 1).backward()
    for g, p in zip(hooked, model.parameters(), strict=True):
        assert torch.equal(g, p.grad)
    assert opt.memory_bytes().total_bytes == 0 and opt.step_count == 0


def test_two_backward_passes_through_one_forward_accumulate_both_outputs():
    model, twin = _model(), _model()
    opt = PathwiseOptimizer(model.parameters(), N_PATHS)
    twin_opt = PathwiseOptimizer(twin.parameters(), N_PATHS)
    ctx = Context()
    for path in (2, 0):
        ctx.visit(path)
        model.zero_grad()
        with PathwiseHooks(opt, ctx):
            loss = _path_loss(model, path)
            loss.backward(retain_graph=True)
            loss.backward()
        raw = torch.autograd.grad(_path_loss(twin, path), list(twin.parameters()))
        for i, (p, g) in enumerate(zip(model.parameters(), raw, strict=True)):
            first = twin_opt.process_grad(i, g, path, ctx.k)
            second = twin_opt.process_grad(i, g, path, ctx.k)
            torch.testing.assert_close(p.grad, first + second)


def test_expanded_gradient_with_grad_mult(scrapl_ref):
    """b.sum() hands every hook an expanded (stride-0) gradient; scaling it in place fails."""
    ref = scrapl_ref.SCRAPLLoss(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)
    b = nn.Parameter(torch.zeros(5))
    ref.attach_params([b])
    ref.curr_path_idx = 0
    with pytest.raises(RuntimeError, match="single memory location"):
        b.sum().backward()
    ref.attach_params([])

    b.grad = None
    ctx = Context()
    ctx.visit(0)
    with PathwiseHooks(PathwiseOptimizer([b], 7), ctx):
        b.sum().backward()
    torch.testing.assert_close(b.grad, torch.ones(5))  # first visit: sign of the gradient


def test_frozen_parameter_is_refused_before_any_hook_is_registered():
    model = _model()
    model[2].bias.requires_grad_(False)
    opt = PathwiseOptimizer(model.parameters(), N_PATHS)
    with pytest.raises(ValueError, match=r"params\[4\] \(shape \(3,\)\) has requires_grad=False"):
        PathwiseHooks(opt, Context())
    _path_loss(model, 0).backward()  # no hook left behind: plain gradients, no state
    assert opt.memory_bytes().total_bytes == 0 and opt.step_count == 0


def test_remove_restores_plain_gradients_and_is_idempotent():
    model = _model()
    ctx = Context()
    ctx.visit(1)
    hooks = PathwiseHooks(PathwiseOptimizer(model.parameters(), N_PATHS), ctx)
    assert hooks.attached
    hooks.remove()
    hooks.remove()
    assert not hooks.attached
    _path_loss(model, 1).backward()
    raw = torch.autograd.grad(_path_loss(model, 1), list(model.parameters()))
    for p, g in zip(model.parameters(), raw, strict=True):
        assert torch.equal(p.grad, g)


def test_training_backward_without_a_path_raises():
    model = _model()
    with PathwiseHooks(PathwiseOptimizer(model.parameters(), N_PATHS), Context()):
        with pytest.raises(RuntimeError, match="no path has been sampled"):
            _path_loss(model, 0).backward()


def test_explicit_api_composes_with_grad_scaler_and_clipping():
    """Between unscale_ and SGD.step the optimizer sees the true (unscaled, clipped) gradients."""
    plain, scaled = _model(), _model()
    opts = [PathwiseOptimizer(m.parameters(), N_PATHS, grad_mult=1e3) for m in (plain, scaled)]
    sgds = [torch.optim.SGD(m.parameters(), lr=0.05) for m in (plain, scaled)]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    for path in PATHS:
        for sgd in sgds:
            sgd.zero_grad()
        _path_loss(plain, path).backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), 0.5)
        opts[0].step(path)
        sgds[0].step()

        scaler.scale(_path_loss(scaled, path)).backward()
        scaler.unscale_(sgds[1])
        torch.nn.utils.clip_grad_norm_(scaled.parameters(), 0.5)
        if all(torch.isfinite(p.grad).all() for p in scaled.parameters()):
            opts[1].step(path)  # skip overflow steps, as the scaler skips SGD
        scaler.step(sgds[1])
        scaler.update()
    for p, q in zip(plain.parameters(), scaled.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)


def test_adapter_rejects_invalid_arguments():
    with pytest.raises(TypeError, match="optimizer must be a PathwiseOptimizer, got SGD"):
        PathwiseHooks(torch.optim.SGD(_model().parameters(), lr=1.0), Context())  # type: ignore
    opt = PathwiseOptimizer(_model().parameters(), N_PATHS)
    with pytest.raises(TypeError, match="context must be callable, got 3"):
        PathwiseHooks(opt, 3)  # type: ignore[arg-type]
