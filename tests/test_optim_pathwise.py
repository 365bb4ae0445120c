"""PathwiseOptimizer: equivalences (Adam, a dense re-derivation), invariants, state and memory."""

from __future__ import annotations

import doctest

import pytest
import torch

import scrapl.optim.pathwise as pathwise_module
from scrapl.optim import PathwiseOptimizer

SHAPES = [(5, 3), (3,), (1,)]


def _params(dtype=torch.float32, seed=0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype)) for s in SHAPES]


def _grads(step: int, dtype=torch.float32) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 + step)
    return [torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES]


def _paths(n_steps: int, n_paths: int, seed: int = 3) -> list[int]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, n_paths, (n_steps,), generator=gen).tolist()


class DenseReference:
    """P-Adam + P-SAGA re-derived from the equations with full (P, *shape) tables, O(P·n)."""

    def __init__(self, shapes, n_paths, *, compat, grad_mult, b1=0.9, b2=0.999, eps=1e-8):
        self.P, self.compat, self.mult, self.b1, self.b2, self.eps = (
            n_paths, compat, grad_mult, b1, b2, eps,
        )  # fmt: skip
        z = [torch.zeros(n_paths, *s, dtype=torch.float64) for s in shapes]
        self.m, self.v, self.M = [x.clone() for x in z], [x.clone() for x in z], z
        self.tau = [[0] * n_paths for _ in shapes]
        self.seen: set[int] = set()

    def __call__(self, i, g, p, k):
        self.seen.add(p)
        g = g.double() * self.mult
        t = k + (self.compat == "reference")
        d = (t - self.tau[i][p]) / self.P
        self.m[i][p] = self.b1**d * self.m[i][p] + (1 - self.b1**d) * g
        self.v[i][p] = self.b2**d * self.v[i][p] + (1 - self.b2**d) * g * g
        self.tau[i][p] = t
        m_hat = self.m[i][p] / (1 - self.b1 ** (t / self.P))
        v_hat = self.v[i][p] / (1 - self.b2 ** (t / self.P))
        h = m_hat / (v_hat.sqrt() + self.eps)
        n = len(self.seen)
        den = n if self.compat == "paper" else max(1, n - 1)
        out = h - self.M[i][p] + self.M[i].sum(0) / den
        self.M[i][p] = h
        return out


def test_doctests():
    assert doctest.testmod(pathwise_module, raise_on_error=False).failed == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("b1", "b2", "eps", "grad_mult"), [
    (0.9, 0.999, 1e-8, 1.0), (0.5, 0.9, 1e-3, 1.0), (0.0, 0.99, 1e-6, 1.0), (0.9, 0.999, 1e-8, 1e4),
])  # fmt: skip
def test_one_path_equals_torch_adam(dtype, b1, b2, eps, grad_mult):
    """P-Adam with P = 1 + SGD(lr) == Adam(lr, betas, eps / grad_mult)."""
    ours, theirs = _params(dtype), _params(dtype)
    opt = PathwiseOptimizer(ours, 1, grad_mult=grad_mult, b1=b1, b2=b2, eps=eps * grad_mult,
                            use_p_saga=False)  # fmt: skip
    sgd = torch.optim.SGD(ours, lr=1e-2)
    adam = torch.optim.Adam(theirs, lr=1e-2, betas=(b1, b2), eps=eps, foreach=False)
    for step in range(25):
        for params in (ours, theirs):
            for p, g in zip(params, _grads(step, dtype), strict=True):
                p.grad = g.clone()
        opt.step(0)
        sgd.step()
        adam.step()
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=tol, atol=tol)


def test_reference_mode_one_path_is_adam_fed_the_first_gradient_twice():
    """The reference's clock runs one step ahead (t = k + 1): documented quirk Q7."""
    ours, theirs = _params(torch.float64), _params(torch.float64)
    opt = PathwiseOptimizer(ours, 1, grad_mult=1.0, use_p_saga=False, compat="reference")
    adam = torch.optim.Adam(theirs, lr=1.0)
    g0 = _grads(0, torch.float64)
    for p, g in zip(theirs, g0, strict=True):
        p.grad = g.clone()
    adam.step()  # the extra, phantom first step: only its moments matter
    for step in range(6):
        for p, q, g in zip(ours, theirs, g0 if step == 0 else _grads(step, torch.float64),
                           strict=True):  # fmt: skip
            p.grad, q.grad = g.clone(), g.clone()
        opt.step(0)
        before = [q.detach().clone() for q in theirs]
        adam.step()
        for p, q, b in zip(ours, theirs, before, strict=True):
            torch.testing.assert_close(p.grad, b - q.detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("compat", ["paper", "reference"])
def test_matches_dense_rederivation_with_revisits(compat):
    params = _params(torch.float64)
    n_paths = 6
    opt = PathwiseOptimizer(params, n_paths, grad_mult=100.0, compat=compat)
    dense = DenseReference(SHAPES, n_paths, compat=compat, grad_mult=100.0)
    for k, path in enumerate(_paths(60, n_paths), start=1):
        for i, g in enumerate(_grads(k, torch.float64)):
            out = opt.process_grad(i, g, path, k)
            torch.testing.assert_close(out, dense(i, g, path, k), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("compat", ["paper", "reference"])
def test_saga_memory_and_running_sums_equal_recomputation(compat):
    """After many steps the memory rows are the last P-Adam outputs and S = Σ rows."""
    n_paths = 13
    param = torch.nn.Parameter(torch.zeros(500))
    opt = PathwiseOptimizer([param], n_paths, compat=compat)
    adam_only = PathwiseOptimizer([torch.nn.Parameter(torch.zeros(500))], n_paths,
                                  compat=compat, use_p_saga=False)  # fmt: skip
    last_h: dict[int, torch.Tensor] = {}
    gen = torch.Generator().manual_seed(0)
    for k, path in enumerate(_paths(400, n_paths), start=1):
        g = torch.randn(500, generator=gen) * 1e-6
        opt.process_grad(0, g, path, k)
        last_h[path] = adam_only.process_grad(0, g, path, k)
    state = opt.state_dict()["params"][0]
    assert sorted(state["paths"]) == sorted(last_h)
    for path, row in state["paths"].items():
        torch.testing.assert_close(row["memory"], last_h[path], rtol=0, atol=0)
    recomputed = torch.stack([row["memory"] for row in state["paths"].values()]).double().sum(0)
    torch.testing.assert_close(state["memory_sum"].double(), recomputed, rtol=0, atol=1e-5)


def test_first_step_is_sign_of_gradient_with_default_grad_mult():
    params = _params()
    opt = PathwiseOptimizer(params, 315)
    grads = [g * 1e-9 for g in _grads(0)]  # JTFS-sized gradients
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    opt.step(42)
    for p, g in zip(params, grads, strict=True):
        torch.testing.assert_close(p.grad, g.sign(), rtol=0, atol=1e-5)


def test_process_grad_leaves_input_untouched_and_accepts_expanded():
    opt = PathwiseOptimizer([torch.nn.Parameter(torch.zeros(4, 3))], 3, grad_mult=1.0,
                            use_p_adam=False)  # fmt: skip
    grad = torch.ones(1, 3).expand(4, 3)  # stride 0: an in-place write would fail
    out = [opt.process_grad(0, grad, p, k) for k, p in enumerate([0, 1, 0], start=1)]
    assert torch.equal(grad, torch.ones(4, 3))
    # SAGA without Adam: memory is the gradient, so revisits return the memory average
    torch.testing.assert_close(out[2], torch.full((4, 3), 1.0))
    assert all(o.data_ptr() != grad.data_ptr() for o in out)


def test_clock_going_backwards_is_refused():
    opt = PathwiseOptimizer([torch.nn.Parameter(torch.zeros(2))], 3)
    opt.process_grad(0, torch.ones(2), 1, 5)
    with pytest.raises(ValueError, match=r"t=4 is earlier than the last step of path 1 \(5"):
        opt.process_grad(0, torch.ones(2), 1, 4)
    opt.reset()
    opt.process_grad(0, torch.ones(2), 1, 4)
    assert opt.step_count == 4 and opt.visited_paths == {1}


def test_n_seen_defaults_to_own_count():
    explicit = PathwiseOptimizer([torch.nn.Parameter(torch.zeros(3))], 5, compat="reference")
    counted = PathwiseOptimizer([torch.nn.Parameter(torch.zeros(3))], 5, compat="reference")
    for k, path in enumerate([3, 1, 3, 4, 1], start=1):
        g = _grads(k)[1]
        n_seen = len(set([3, 1, 3, 4, 1][:k]))
        torch.testing.assert_close(explicit.process_grad(0, g, path, k, n_seen),
                                   counted.process_grad(0, g, path, k))  # fmt: skip


@pytest.mark.parametrize("offload", [False, True])
def test_state_is_lazy_and_reported(offload):
    params = _params()
    n = sum(p.numel() for p in params)
    opt = PathwiseOptimizer(params, 315, offload=offload)
    assert opt.memory_bytes().total_bytes == 0
    for k, path in enumerate([7, 9, 7, 300], start=1):
        for p, g in zip(params, _grads(k), strict=True):
            p.grad = g
        opt.step(path)
        rows = 3 * len(opt.visited_paths) * n * 4  # m, v, M per visited path, float32
        report = opt.memory_bytes()
        expected = (n * 4, rows) if offload else (n * 4 + rows, 0)
        assert (report.device_bytes, report.offloaded_bytes) == expected


def test_offload_gives_identical_updates():
    a, b = _params(), _params()
    opt_a = PathwiseOptimizer(a, 4)
    opt_b = PathwiseOptimizer(b, 4, offload=True)
    for k, path in enumerate(_paths(20, 4), start=1):
        for i, g in enumerate(_grads(k)):
            assert torch.equal(opt_a.process_grad(i, g, path, k), opt_b.process_grad(i, g, path, k))


def test_state_follows_parameter_dtype():
    params = _params(torch.float64)
    opt = PathwiseOptimizer(params, 3)
    opt.process_grad(0, _grads(0, torch.float64)[0], 2, 1)
    row = opt.state_dict()["params"][0]["paths"][2]
    assert {row[n].dtype for n in ("exp_avg", "exp_avg_sq", "memory")} == {torch.float64}


def test_state_migrates_when_parameters_change_dtype():
    """model.double() mid-training: the state is cast lazily, as a checkpoint load would do."""
    model = torch.nn.Linear(3, 2)
    opt = PathwiseOptimizer(model.parameters(), 3)
    for k, path in enumerate([0, 1, 0], start=1):
        for i, p in enumerate(model.parameters()):
            opt.process_grad(i, torch.randn(p.shape), path, k)
    twin = torch.nn.Linear(3, 2).double()
    twin.load_state_dict(model.double().state_dict())
    loaded = PathwiseOptimizer(twin.parameters(), 3)
    loaded.load_state_dict(opt.state_dict())
    for i, p in enumerate(model.parameters()):
        g = torch.randn(p.shape, dtype=torch.float64)
        out = opt.process_grad(i, g, 1, 4)
        assert out.dtype == torch.float64
        assert torch.equal(out, loaded.process_grad(i, g, 1, 4))
    assert opt.state_dict()["params"][0]["paths"][1]["exp_avg"].dtype == torch.float64


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("offload", [False, True])
def test_cuda_state_on_device_or_pinned(offload):
    cpu, gpu = _params(), [torch.nn.Parameter(p.detach().cuda()) for p in _params()]
    opt_cpu = PathwiseOptimizer(cpu, 5)
    opt_gpu = PathwiseOptimizer(gpu, 5, offload=offload)
    for k, path in enumerate(_paths(12, 5), start=1):
        for i, g in enumerate(_grads(k)):
            out = opt_gpu.process_grad(i, g.cuda(), path, k)
            torch.testing.assert_close(out.cpu(), opt_cpu.process_grad(i, g, path, k))
    row = opt_gpu.state_dict()["params"][0]["paths"][path]
    assert row["exp_avg"].is_cuda != offload
    assert row["exp_avg"].is_pinned() == offload
    assert opt_gpu.state_dict()["params"][0]["memory_sum"].is_cuda
