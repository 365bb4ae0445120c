"""SCRAPLLoss with attached parameters: hooks vs explicit optimizer, resume, state dicts."""

from __future__ import annotations

import copy
import io
import logging

import pytest
import torch
from torch import nn

from scrapl import SCRAPLLoss

A = dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 8096))


def _batch(step):
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(2, 1, 64, generator=g), torch.randn(2, 1, 8096, generator=g)


def _train(loss_fn, model, steps, *, explicit=None, start=0):
    sgd = torch.optim.SGD(model.parameters(), lr=1e-3)
    for step in range(start, start + steps):
        z, target = _batch(step)
        sgd.zero_grad()
        loss = loss_fn(model(z), target, seed=step)
        loss.backward()
        if explicit is not None:
            explicit.step(loss_fn.curr_path_idx)
        sgd.step()
    return model


def test_seed_toy_model_attach_logs(caplog):
    loss = SCRAPLLoss(shape=48000, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2)
    model = nn.Sequential(nn.Linear(48000, 8), nn.PReLU(), nn.Linear(8, 48000), nn.Tanh())
    with caplog.at_level(logging.INFO, logger="scrapl"):
        loss.attach_params(model.parameters())
        loss.attach_params([])
    assert "Attached 5 parameter tensors (816009 weights)" in caplog.text
    assert "Detached 5 parameter tensors" in caplog.text


@pytest.mark.parametrize("compat", ["paper", "reference"])
def test_hooks_and_explicit_optimizer_agree(compat):
    m1, m2 = _model(), _model()
    l1, l2 = SCRAPLLoss(**A, compat=compat), SCRAPLLoss(**A, compat=compat)
    l1.attach_params(m1.parameters())
    _train(l1, m1, 6)
    opt = l2.make_optimizer(m2.parameters())
    _train(l2, m2, 6, explicit=opt)
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_first_attached_step_is_the_sign_of_the_gradient():
    model = _model()
    loss_fn = SCRAPLLoss(**A)
    loss_fn.attach_params(model.parameters())
    z, target = _batch(0)
    loss_fn(model(z), target, path_idx=2).backward()
    for p in model.parameters():
        assert torch.all((p.grad.abs() - 1).abs() < 1e-6)


def test_resume_equals_straight_run():
    """checkpoint -> fresh objects -> resume == uninterrupted (to 1e-6), with a weights_only load."""
    straight_model, straight_loss = _model(), SCRAPLLoss(**A, sample_all_paths_first=True)
    straight_loss.attach_params(straight_model.parameters())
    torch.manual_seed(7)
    _train(straight_loss, straight_model, 10)

    model, loss_fn = _model(), SCRAPLLoss(**A, sample_all_paths_first=True)
    loss_fn.attach_params(model.parameters())
    torch.manual_seed(7)
    _train(loss_fn, model, 4)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "loss": loss_fn.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)  # weights_only=True by default

    model2, loss2 = _model(seed=3), SCRAPLLoss(**A, sample_all_paths_first=True)
    model2.load_state_dict(ckpt["model"])
    loss2.attach_params(model2.parameters())
    loss2.load_state_dict(ckpt["loss"])
    assert loss2.path_counts == loss_fn.path_counts and loss2.scrapl_t == loss_fn.scrapl_t
    _train(loss2, model2, 6, start=4)
    for a, b in zip(model2.parameters(), straight_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_state_loaded_before_attach_is_applied_on_attach():
    model, loss_fn = _model(), SCRAPLLoss(**A)
    loss_fn.attach_params(model.parameters())
    _train(loss_fn, model, 3)
    sd = copy.deepcopy(loss_fn.state_dict())
    fresh_model = copy.deepcopy(model)
    loss2 = SCRAPLLoss(**A)
    loss2.load_state_dict(sd)
    loss2.attach_params(fresh_model.parameters())
    assert loss2.scrapl_t == 3
    assert loss2.optimizer.visited_paths == loss_fn.optimizer.visited_paths


def test_seed_state_dict_round_trip():
    loss_fn = SCRAPLLoss(**A)
    x, y = torch.randn(1, 1, 8096), torch.randn(1, 1, 8096)
    for k in (1, 4, 4):
        loss_fn(x, y, path_idx=k)
    sd = loss_fn.state_dict()
    loss_fn.clear()
    assert dict(loss_fn.path_counts) == {} and loss_fn.curr_path_idx is None
    loss_fn.load_state_dict(sd)
    assert dict(loss_fn.path_counts) == {1: 1, 4: 2} and loss_fn.curr_path_idx == 4


def test_nested_module_loads_strictly():
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(3, 3)
            self.loss = SCRAPLLoss(**A)

    w1 = Wrapper()
    w1.loss(torch.randn(1, 1, 8096), torch.randn(1, 1, 8096), path_idx=5)
    w2 = Wrapper()
    w2.load_state_dict(w1.state_dict(), strict=True)
    assert dict(w2.loss.path_counts) == {5: 1}


def test_eval_mode_leaves_optimizer_state_untouched():
    model, loss_fn = _model(), SCRAPLLoss(**A)
    loss_fn.attach_params(model.parameters())
    _train(loss_fn, model, 2)
    before = copy.deepcopy(loss_fn.state_dict())
    loss_fn.eval()
    z, target = _batch(9)
    model.zero_grad()
    loss_fn(model(z), target, path_idx=6).backward()
    raw = [p.grad.clone() for p in model.parameters()]
    loss_fn.attach_params([])
    model.zero_grad()
    loss_fn(model(z), target, path_idx=6).backward()
    for r, p in zip(raw, model.parameters(), strict=True):
        torch.testing.assert_close(r, p.grad)  # eval: no grad_mult, no P-Adam/P-SAGA
    after = loss_fn.state_dict()
    assert before["_extra_state"]["sampler"]["path_counts"] == after["_extra_state"]["sampler"]["path_counts"]


def test_frozen_parameter_is_refused_cleanly():
    model = _model()
    model[0].weight.requires_grad_(False)
    loss_fn = SCRAPLLoss(**A)
    with pytest.raises(ValueError, match="requires_grad"):
        loss_fn.attach_params(model.parameters())
    assert loss_fn.optimizer is None and loss_fn.attached_params == []


def test_state_on_parameter_dtype():
    model = _model().double()
    loss_fn = SCRAPLLoss(**A).double()
    loss_fn.attach_params(model.parameters())
    z, target = _batch(0)
    loss_fn(model(z.double()), target.double(), path_idx=1).backward()
    rows = loss_fn.optimizer.state_dict()
    tensors = [t for t in _tensors(rows) if t.is_floating_point()]
    assert tensors and all(t.dtype == torch.float64 for t in tensors)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _tensors(v)


def test_a_checkpoint_of_the_previous_version_loads():
    """tests/data/loss_state_v1.pt: state_dict of a loss with attached parameters after 3 steps and
    some θ-IS values, saved by the previous version (no generator entry in the sampler state)."""
    from pathlib import Path

    saved = torch.load(Path(__file__).parent / "data" / "loss_state_v1.pt", weights_only=True)
    model = nn.Linear(8, 2)
    model.load_state_dict(saved["model"])
    loss_fn = SCRAPLLoss(**A, n_theta=2)
    loss_fn.attach_params(model.parameters())
    loss_fn.load_state_dict(saved["loss"], strict=True)
    assert dict(loss_fn.path_counts) == {6: 1, 0: 1, 1: 1} and loss_fn.scrapl_t == 3
    assert loss_fn.theta_is.state.updated == [{0}, {3, 5}]
    assert loss_fn.optimizer is not None and loss_fn.optimizer.visited_paths == {0, 1, 6}
    assert loss_fn.sampler.draw_generator is None  # unseeded draws stay on the global RNG
    basis = torch.randn(2, 8096, generator=torch.Generator().manual_seed(1))
    loss_fn(model(torch.randn(2, 1, 8)) @ basis, torch.randn(2, 1, 8096), seed=3).backward()
    assert loss_fn.optimizer.step_count == 4
