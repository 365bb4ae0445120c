"""Checkpointing PathwiseOptimizer: weights_only-safe state, exact resume, strict loading."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from scrapl.optim import HookContext, PathwiseHooks, PathwiseOptimizer

N_PATHS = 5
PATHS = [3, 1, 3, 0, 4, 4, 1, 2, 3, 0, 1, 3, 2, 2, 4, 0, 1, 3, 3, 4]
SPLIT = 9
X = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
Y = torch.randn(N_PATHS, 8, 4, generator=torch.Generator().manual_seed(1))


def _model() -> nn.Module:
    torch.manual_seed(7)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4))


def _path_loss(model: nn.Module, path: int) -> torch.Tensor:
    return ((model(X) - Y[path]) ** 2).mean()


class FakeLoss:
    """Stands in for SCRAPLLoss's counters: current path, train-forward count, path counts."""

    def __init__(self) -> None:
        self.path: int | None = None
        self.k = 0
        self.counts: dict[int, int] = {}

    def __call__(self, model: nn.Module, path: int) -> torch.Tensor:
        self.path, self.k = path, self.k + 1
        self.counts[path] = self.counts.get(path, 0) + 1
        return _path_loss(model, path)

    def context(self) -> HookContext:
        return HookContext(self.path, self.k, len(self.counts), True)


def _train(model, opt, sgd, paths, loss_fn=None) -> None:
    for path in paths:
        sgd.zero_grad()
        if loss_fn is None:
            _path_loss(model, path).backward()
            opt.step(path)
        else:
            loss_fn(model, path).backward()
        sgd.step()


def _save_load(obj: object) -> object:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _assert_plain(obj: object, where: str = "state") -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            assert type(key) in (int, str), f"{where} has key {key!r}"
            _assert_plain(value, f"{where}[{key!r}]")
    elif isinstance(obj, list):
        for j, value in enumerate(obj):
            _assert_plain(value, f"{where}[{j}]")
    else:
        assert obj is None or type(obj) in (int, float, bool, str, torch.Tensor), where


@pytest.mark.parametrize("compat", ["paper", "reference"])
def test_state_dict_is_plain_and_loads_weights_only(compat):
    model = _model()
    opt = PathwiseOptimizer(model.parameters(), N_PATHS, compat=compat)
    _train(model, opt, torch.optim.SGD(model.parameters(), lr=0.1), PATHS[:4])
    state = opt.state_dict()
    _assert_plain(state)
    loaded = _save_load(state)
    assert loaded["step"] == 4 and loaded["visited"] == [0, 1, 3]
    assert sorted(loaded["params"][0]["paths"]) == [0, 1, 3]


@pytest.mark.parametrize("api", ["explicit", "hooks"])
@pytest.mark.parametrize("compat", ["paper", "reference"])
@pytest.mark.parametrize(("offload_before", "offload_after"), [(False, False), (False, True)])
def test_resume_equals_straight_through(api, compat, offload_before, offload_after):
    def make(offload):
        model = _model()
        opt = PathwiseOptimizer(model.parameters(), N_PATHS, grad_mult=1e3, compat=compat,
                                offload=offload)  # fmt: skip
        sgd = torch.optim.SGD(model.parameters(), lr=0.05, weight_decay=0.01)
        loss = FakeLoss() if api == "hooks" else None
        hooks = PathwiseHooks(opt, loss.context) if loss else None
        return model, opt, sgd, loss, hooks

    straight, s_opt, s_sgd, s_loss, _ = make(offload_before)
    _train(straight, s_opt, s_sgd, PATHS, s_loss)

    first, f_opt, f_sgd, f_loss, f_hooks = make(offload_before)
    _train(first, f_opt, f_sgd, PATHS[:SPLIT], f_loss)
    counters = {"k": f_loss.k, "counts": dict(f_loss.counts)} if f_loss else {}
    ckpt = _save_load({"model": first.state_dict(), "opt": f_opt.state_dict(),
                       "sgd": f_sgd.state_dict(), "loss": counters})  # fmt: skip
    if f_hooks:
        f_hooks.remove()

    resumed, r_opt, r_sgd, r_loss, _ = make(offload_after)
    resumed.load_state_dict(ckpt["model"])
    r_opt.load_state_dict(ckpt["opt"])
    r_sgd.load_state_dict(ckpt["sgd"])
    if r_loss:
        r_loss.k, r_loss.counts = ckpt["loss"]["k"], ckpt["loss"]["counts"]
    assert r_opt.step_count == SPLIT and r_opt.visited_paths == set(PATHS[:SPLIT])
    _train(resumed, r_opt, r_sgd, PATHS[SPLIT:], r_loss)

    for p, q in zip(resumed.parameters(), straight.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_loaded_state_is_copied_not_aliased():
    model = _model()
    opt = PathwiseOptimizer(model.parameters(), N_PATHS)
    _train(model, opt, torch.optim.SGD(model.parameters(), lr=0.1), PATHS[:3])
    state = _save_load(opt.state_dict())
    other = PathwiseOptimizer(_model().parameters(), N_PATHS)
    other.load_state_dict(state)
    state["params"][0]["memory_sum"].fill_(123.0)
    state["params"][0]["paths"][3]["exp_avg"].fill_(123.0)
    assert not (other.state_dict()["params"][0]["memory_sum"] == 123.0).any()
    assert not (other.state_dict()["params"][0]["paths"][3]["exp_avg"] == 123.0).any()


def _state() -> dict:
    model = _model()
    opt = PathwiseOptimizer(model.parameters(), N_PATHS)
    _train(model, opt, torch.optim.SGD(model.parameters(), lr=0.1), PATHS[:3])
    return opt.state_dict()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_paths=6), r"state_dict has n_paths=5, but this optimizer has n_paths=6"),
        (dict(compat="reference"), r"compat='paper', but this optimizer has compat='reference'"),
        (dict(use_p_saga=False), r"use_p_saga=True, but this optimizer has use_p_saga=False"),
    ],
)
def test_load_refuses_structurally_different_state(kwargs, match):
    opt = PathwiseOptimizer(_model().parameters(), **{"n_paths": N_PATHS, **kwargs})
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(_state())


def test_load_refuses_other_parameter_shapes_and_counts():
    with pytest.raises(ValueError, match=r"state\['params'\]\[0\] memory_sum has shape \(5, 6\)"):
        other = nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 4))
        PathwiseOptimizer(other.parameters(), N_PATHS).load_state_dict(_state())
    with pytest.raises(ValueError, match=r"must list 1 parameter entries, got 4"):
        PathwiseOptimizer([nn.Parameter(torch.zeros(3))], N_PATHS).load_state_dict(_state())


def test_load_refuses_foreign_objects():
    opt = PathwiseOptimizer(_model().parameters(), N_PATHS)
    with pytest.raises(TypeError, match="state_dict must be a dict, got list"):
        opt.load_state_dict([])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"state_dict\['format'\] must be .*got None"):
        opt.load_state_dict({"step": 0})
    bad = _state()
    bad["visited"] = [1, 9]
    with pytest.raises(ValueError, match=r"paths outside \[0, n_paths\): \[9\]"):
        opt.load_state_dict(bad)


def test_load_refuses_malformed_entries():
    opt = PathwiseOptimizer(_model().parameters(), N_PATHS)
    bad = _state()
    del bad["params"][1]["paths"]
    with pytest.raises(
        ValueError, match=r"state\['params'\]\[1\] must be a dict with 'memory_sum' and 'paths'"
    ):
        opt.load_state_dict(bad)
    bad = _state()
    bad["params"][0]["paths"][3]["exp_avg"] = [0.0]
    with pytest.raises(TypeError, match=r"paths\[3\]\['exp_avg'\] must be a tensor, got list"):
        opt.load_state_dict(bad)
