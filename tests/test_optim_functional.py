"""Properties of the pure P-Adam / P-SAGA update rules (scrapl.optim.functional)."""

from __future__ import annotations

import doctest

import pytest
import torch

import scrapl.optim.functional as F
from scrapl.optim import adam_time, p_adam_update, p_saga_update, saga_denominator

HP = dict(b1=0.9, b2=0.999, eps=1e-8)


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_doctests():
    assert doctest.testmod(F, raise_on_error=False).failed == 0


@pytest.mark.parametrize("step", [1, 2, 7, 1000])
def test_first_visit_is_sign_of_gradient(step):
    g = _rand(64) * 1e3
    out = p_adam_update(g, None, None, step=step, last_step=0, n_paths=7, **HP)
    torch.testing.assert_close(out.update, g / (g.abs() + HP["eps"]), rtol=1e-12, atol=0)
    torch.testing.assert_close(out.update, g.sign(), rtol=0, atol=1e-8)


@pytest.mark.parametrize("visits", [[1, 2, 3, 4], [3, 10, 11, 40, 41, 300], [5, 5, 9]])
def test_constant_gradient_is_exactly_bias_corrected(visits):
    """The decays telescope: any visit pattern of a constant g gives ĝ = g / (|g| + ε)."""
    g = _rand(16) + 3.0
    m = v = None
    last = 0
    for t in visits:
        m, v = p_adam_update(g, m, v, step=t, last_step=last, n_paths=5, **HP)[1:]
        out = p_adam_update(g, m, v, step=t, last_step=t, n_paths=5, **HP).update
        last = t
        torch.testing.assert_close(out, g / (g.abs() + HP["eps"]), rtol=1e-12, atol=0)


def test_revisit_after_n_paths_steps_decays_by_one_beta():
    g0, g1 = _rand(8, seed=1), _rand(8, seed=2)
    first = p_adam_update(g0, None, None, step=3, last_step=0, n_paths=5, **HP)
    second = p_adam_update(g1, first.exp_avg, first.exp_avg_sq, step=8, last_step=3, n_paths=5, **HP)
    torch.testing.assert_close(second.exp_avg, 0.9 * first.exp_avg + 0.1 * g1)
    torch.testing.assert_close(second.exp_avg_sq, 0.999 * first.exp_avg_sq + 0.001 * g1**2)


def test_same_step_leaves_moments_unchanged():
    g0, g1 = _rand(8, seed=1), _rand(8, seed=2)
    first = p_adam_update(g0, None, None, step=4, last_step=0, n_paths=3, **HP)
    again = p_adam_update(g1, first.exp_avg, first.exp_avg_sq, step=4, last_step=4, n_paths=3, **HP)
    torch.testing.assert_close(again.exp_avg, first.exp_avg, rtol=0, atol=0)
    torch.testing.assert_close(again.update, first.update, rtol=0, atol=0)


def test_one_path_equals_adam_formula():
    """With P = 1 the rule is the textbook Adam step (without the learning rate)."""
    b1, b2, eps = 0.8, 0.99, 1e-6
    m = v = torch.zeros(8, dtype=torch.float64)
    state = (None, None)
    for t in range(1, 12):
        g = _rand(8, seed=t)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        expected = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        out = p_adam_update(g, *state, step=t, last_step=t - 1, n_paths=1, b1=b1, b2=b2, eps=eps)
        state = (out.exp_avg, out.exp_avg_sq)
        torch.testing.assert_close(out.update, expected, rtol=1e-12, atol=1e-14)


def test_p_adam_does_not_modify_its_inputs():
    g, m, v = _rand(8, seed=1), _rand(8, seed=2), _rand(8, seed=3).abs()
    copies = [x.clone() for x in (g, m, v)]
    p_adam_update(g, m, v, step=9, last_step=2, n_paths=3, **HP)
    for x, c in zip((g, m, v), copies, strict=True):
        assert torch.equal(x, c)


def test_p_saga_rule():
    h, mem, s = _rand(8, seed=1), _rand(8, seed=2), _rand(8, seed=3)
    copies = [x.clone() for x in (h, mem, s)]
    out = p_saga_update(h, mem, s, denominator=3)
    torch.testing.assert_close(out.update, h - mem + s / 3)
    torch.testing.assert_close(out.memory_sum, s - mem + h)
    assert out.memory is h
    for x, c in zip((h, mem, s), copies, strict=True):
        assert torch.equal(x, c)


def test_p_saga_with_no_memory_is_identity():
    h = _rand(8)
    out = p_saga_update(h, None, None, denominator=1)
    assert torch.equal(out.update, h) and torch.equal(out.memory_sum, h)
    assert out.update is not h and out.memory_sum is not h


@pytest.mark.parametrize(
    ("k", "n_seen", "compat", "t", "d"),
    [(1, 1, "paper", 1, 1), (1, 1, "reference", 2, 1), (5, 2, "reference", 6, 1),
     (5, 4, "paper", 5, 4), (5, 4, "reference", 6, 3)],
)  # fmt: skip
def test_compat_mappings(k, n_seen, compat, t, d):
    assert adam_time(k, compat) == t
    assert saga_denominator(n_seen, compat) == d


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(step=0, last_step=0, n_paths=3), "step must be >= 1, got 0"),
        (dict(step=2, last_step=3, n_paths=3), "last_step must be in .*got 3"),
        (dict(step=2, last_step=-1, n_paths=3), "last_step must be in .*got -1"),
        (dict(step=2, last_step=0, n_paths=0), "n_paths must be >= 1, got 0"),
    ],
)
def test_p_adam_rejects_invalid_clock(kwargs, match):
    with pytest.raises(ValueError, match=match):
        p_adam_update(_rand(2), None, None, **kwargs, **HP)


def test_invalid_compat_and_denominator():
    with pytest.raises(ValueError, match="compat must be one of .*'adam'"):
        adam_time(1, "adam")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compat must be one of .*'x'"):
        saga_denominator(1, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="denominator must be >= 1, got 0"):
        p_saga_update(_rand(2), None, None, denominator=0)
