"""Gradient accumulation: a step never credits one path's gradient to another, or several paths'
to one (explicit optimizer and hooks), and one path per step over micro-batches equals one batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scrapl import SCRAPLLoss
from scrapl.optim import MixedPathsError

A = dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)  # 7 paths


def _model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 4), nn.Tanh(), nn.Linear(4, 8096)).to(dtype)


def _batch(step, n=4, dtype=torch.float32):
    g = torch.Generator().manual_seed(step)
    return torch.randn(n, 1, 16, generator=g, dtype=dtype), torch.randn(n, 1, 8096, generator=g, dtype=dtype)


def _explicit():
    model, loss_fn = _model(), SCRAPLLoss(**A)
    return model, loss_fn, loss_fn.make_optimizer(model.parameters())


@pytest.mark.parametrize("steps", [1, 3])
def test_one_path_per_step_over_micro_batches_equals_one_large_batch(steps):
    """The documented accumulation (draw one path, give it to every micro-batch, one step) makes
    the updates of one large batch, step after step (float64: to rounding)."""
    f64 = torch.float64
    runs = []
    for micro in (1, 2, 4):
        model, loss_fn = _model(dtype=f64), SCRAPLLoss(**A).double()
        pathwise = loss_fn.make_optimizer(model.parameters())
        sgd = torch.optim.SGD(model.parameters(), lr=1e-2)
        for step in range(steps):
            z, target = _batch(step, dtype=f64)
            path = loss_fn.sample_path(seed=step)
            sgd.zero_grad()
            for zc, tc in zip(z.chunk(micro), target.chunk(micro), strict=True):
                (loss_fn(model(zc), tc, path_idx=path) / micro).backward()
            pathwise.step(path)
            sgd.step()
        runs.append([p.detach().clone() for p in model.parameters()])
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)


def test_micro_batches_of_different_paths_are_refused_by_the_step():
    model, loss_fn, pathwise = _explicit()
    z, target = _batch(0)
    loss_fn(model(z[:2]), target[:2], path_idx=1).backward()
    loss_fn(model(z[2:]), target[2:], path_idx=5).backward()
    before = [p.grad.clone() for p in model.parameters()]
    with pytest.raises(MixedPathsError, match=r"path\(s\) 1, 5"):
        pathwise.step(loss_fn.curr_path_idx)
    for p, g in zip(model.parameters(), before, strict=True):
        assert torch.equal(p.grad, g)  # nothing was transformed
    assert pathwise.step_count == 0


def test_one_backward_through_two_paths_is_refused():
    model, loss_fn, pathwise = _explicit()
    z, target = _batch(0)
    (loss_fn(model(z), target, path_idx=2) + loss_fn(model(z), target, path_idx=3)).backward()
    with pytest.raises(MixedPathsError, match=r"path\(s\) 2, 3"):
        pathwise.step(3)


def test_step_for_another_path_than_the_gradients_is_refused():
    """A train-mode forward between backward and step (a metric) moves curr_path_idx."""
    model, loss_fn, pathwise = _explicit()
    z, target = _batch(0)
    loss_fn(model(z), target, path_idx=1).backward()
    with torch.no_grad():
        loss_fn(model(z), target, path_idx=4)
    with pytest.raises(MixedPathsError, match=r"step\(path_idx=4\).*path\(s\) 1"):
        pathwise.step(loss_fn.curr_path_idx)


def test_hook_route_refuses_a_backward_into_another_paths_gradient():
    model, loss_fn = _model(), SCRAPLLoss(**A)
    loss_fn.attach_params(model.parameters())
    z, target = _batch(0)
    loss_fn(model(z[:2]), target[:2], path_idx=1).backward()
    with pytest.raises(MixedPathsError, match=r"path\(s\) 1, 6"):
        loss_fn(model(z[2:]), target[2:], path_idx=6).backward()


def test_hook_route_refuses_a_gradient_of_an_earlier_forward():
    model, loss_fn = _model(), SCRAPLLoss(**A)
    loss_fn.attach_params(model.parameters())
    z, target = _batch(0)
    value = loss_fn(model(z), target, path_idx=2)
    with torch.no_grad():
        loss_fn(model(z), target, path_idx=0)  # moves the hooks' path to 0
    with pytest.raises(MixedPathsError, match=r"for path 0.*path\(s\) 2"):
        value.backward()


def _zero_set_to_none(opt):
    opt.zero_grad(set_to_none=True)


def _zero_in_place(opt):
    opt.zero_grad(set_to_none=False)


@pytest.mark.parametrize("zero", [_zero_set_to_none, _zero_in_place], ids=["set_to_none", "in_place"])
@pytest.mark.parametrize("route", ["explicit", "hooks"])
def test_zero_grad_between_paths_starts_afresh(route, zero):
    """A step skipped after backward (AMP's non-finite gradients), then zero_grad: the next path's
    step is accepted."""
    model, loss_fn = _model(), SCRAPLLoss(**A)
    pathwise = loss_fn.make_optimizer(model.parameters()) if route == "explicit" else None
    if pathwise is None:
        loss_fn.attach_params(model.parameters())
    sgd = torch.optim.SGD(model.parameters(), lr=1e-3)
    z, target = _batch(0)
    loss_fn(model(z), target, path_idx=1).backward()  # its step is skipped
    for path in (4, 2):
        zero(sgd)
        loss_fn(model(z), target, path_idx=path).backward()
        if pathwise is not None:
            pathwise.step(path)
        sgd.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_two_backward_passes_of_one_path_and_other_terms_are_accepted():
    model, loss_fn, pathwise = _explicit()
    z, target = _batch(0)
    value = loss_fn(model(z), target, path_idx=3)
    value.backward(retain_graph=True)
    value.backward()
    (1e-3 * sum(p.square().sum() for p in model.parameters())).backward()  # a regulariser
    pathwise.step(3)
    assert pathwise.step_count == 1
