"""Parity of the JTFS engine and of the per-path loss with scrapl-loss 0.1.0 (float32 and float64).

Every path of the small configuration and at least 16 paths covering every ``j2`` of each large
configuration run in CI; ``pytest --allpaths`` runs every path of every configuration.
"""

from __future__ import annotations

import pytest
import torch

from scrapl import SCRAPLLoss

from .configs import CONFIGS, LARGE, N_PATHS, SMALL, make_signals, spread_paths

LOSS_RTOL = 1e-4
GRAD_RTOL = 1e-3

_cache: dict = {}


def _pair(scrapl_ref, name):
    """(ours, reference) SCRAPLLoss for a configuration, built once per session, in eval mode."""
    if name not in _cache:
        kw = CONFIGS[name]
        ref = scrapl_ref.SCRAPLLoss(**kw).eval()
        ours = SCRAPLLoss(**kw).eval()
        _cache[name] = (ours, ref)
    return _cache[name]


def _loss_and_grad(loss_fn, x, y, k):
    x = x.clone().requires_grad_(True)
    value = loss_fn(x, y, path_idx=k)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_same_paths_in_same_order(scrapl_ref, name):
    ours, ref = _pair(scrapl_ref, name)
    assert ours.n_paths == ref.n_paths == N_PATHS[name]
    assert ours.scrapl_keys == [tuple(k) for k in ref.scrapl_keys]


def _check_paths(scrapl_ref, name, paths, ours=None):
    ours_default, ref = _pair(scrapl_ref, name)
    ours = ours_default if ours is None else ours
    x, y = make_signals(CONFIGS[name]["shape"], batch=2)
    failures = []
    for k in paths:
        v_ours, g_ours = _loss_and_grad(ours, x, y, k)
        v_ref, g_ref = _loss_and_grad(ref, x, y, k)
        e_v, e_g = abs(v_ours.item() - v_ref.item()) / abs(v_ref.item()), _rel(g_ours, g_ref)
        if not (e_v <= LOSS_RTOL and e_g <= GRAD_RTOL):
            failures.append((k, ours.scrapl_keys[k], e_v, e_g))
    assert not failures, f"(path, key, loss rel err, grad rel err) beyond tolerance: {failures}"


@pytest.mark.parametrize("name", SMALL)
def test_every_path_small(scrapl_ref, name):
    _check_paths(scrapl_ref, name, range(N_PATHS[name]))


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE)
def test_spread_paths_large(scrapl_ref, name):
    ours, _ = _pair(scrapl_ref, name)
    paths = spread_paths(ours.paths, 16)
    assert {ours.paths[k].j2 for k in paths} == {p.j2 for p in ours.paths}
    _check_paths(scrapl_ref, name, paths)


@pytest.mark.allpaths
@pytest.mark.parametrize("name", LARGE)
def test_every_path_large(scrapl_ref, name):
    _check_paths(scrapl_ref, name, range(N_PATHS[name]))


def test_float64_tight(scrapl_ref):
    """In float64 both implementations agree to ~1e-9 (different summation orders only)."""
    ours, ref = _pair(scrapl_ref, "A")
    ours64 = SCRAPLLoss(**CONFIGS["A"]).double().eval()
    ref64 = scrapl_ref.SCRAPLLoss(**CONFIGS["A"]).double().eval()
    x, y = make_signals(CONFIGS["A"]["shape"], batch=2, dtype=torch.float64)
    for k in range(ours.n_paths):
        v_ours, g_ours = _loss_and_grad(ours64, x, y, k)
        v_ref, g_ref = _loss_and_grad(ref64, x, y, k)
        assert abs(v_ours.item() - v_ref.item()) <= 1e-9 * abs(v_ref.item())
        assert _rel(g_ours, g_ref) <= 1e-7


@pytest.mark.parametrize("log1p", [False, True])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_distance_options(scrapl_ref, p, log1p):
    kw = dict(CONFIGS["A"], p=p, use_rho_log1p=log1p)
    ours, ref = SCRAPLLoss(**kw).eval(), scrapl_ref.SCRAPLLoss(**kw).eval()
    x, y = make_signals(kw["shape"], batch=3)
    for k in (0, 4):
        v_ours, g_ours = _loss_and_grad(ours, x, y, k)
        v_ref, g_ref = _loss_and_grad(ref, x, y, k)
        assert abs(v_ours.item() - v_ref.item()) <= LOSS_RTOL * abs(v_ref.item())
        assert _rel(g_ours, g_ref) <= GRAD_RTOL


EDGE = dict(shape=4096, J=6, Q1=2, Q2=1, J_fr=2, Q_fr=1)


@pytest.mark.parametrize(
    "T,F",
    [(None, None), (16, None), ("global", None), (None, "global"), ("global", "global"), (None, 2), (100, 3)],
)
def test_averaging_modes_coefficients(scrapl_ref, T, F):
    """Per-path coefficients for every averaging mode (jtfs-spec.md §9.1 edge configurations)."""
    ref = scrapl_ref.SCRAPLLoss(**EDGE, T=T, F=F)
    ours = SCRAPLLoss(**EDGE, T=T, F=F)
    x = make_signals(EDGE["shape"], batch=2)[0].view(2, EDGE["shape"])
    for k in range(ours.n_paths):
        n2, n_fr = ref.scrapl_keys[k]
        expected = ref.jtfs.scattering_singlepath(x.view(2, 1, -1), n2, n_fr)["coef"][:, 0, ..., 0]
        got = ours.jtfs.path(x, k)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=0, atol=2e-6 * expected.abs().max().item())


@pytest.mark.parametrize("J_fr", [0, 4])
def test_other_frequential_depths(scrapl_ref, J_fr):
    kw = dict(EDGE, J_fr=J_fr)
    ref, ours = scrapl_ref.SCRAPLLoss(**kw), SCRAPLLoss(**kw)
    assert ours.scrapl_keys == [tuple(k) for k in ref.scrapl_keys]
    x = make_signals(kw["shape"], batch=1)[0].view(1, -1)
    for k in range(0, ours.n_paths, 3):
        n2, n_fr = ref.scrapl_keys[k]
        expected = ref.jtfs.scattering_singlepath(x.view(1, 1, -1), n2, n_fr)["coef"][:, 0, ..., 0]
        torch.testing.assert_close(
            ours.jtfs.path(x, k), expected, rtol=0, atol=2e-6 * expected.abs().max().item()
        )


@pytest.mark.parametrize("name", ["A", "C"])
def test_low_memory_mode(scrapl_ref, name):
    """``low_memory=True`` (chunked, checkpointed) against the reference: every path of A (chunks of
    one first-order filter and one frequential row), a spread of C with the default chunk size."""
    kw = CONFIGS[name]
    ours = SCRAPLLoss(**kw, low_memory=True).eval()
    if name == "A":
        ours.jtfs.chunk_elems = 1
    paths = range(N_PATHS[name]) if name == "A" else spread_paths(ours.paths, 6)
    _check_paths(scrapl_ref, name, paths, ours)
