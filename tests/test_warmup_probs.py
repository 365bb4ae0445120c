"""θ-IS probabilities: update_prob semantics, closed forms, the README run, checks, state."""

from __future__ import annotations

import doctest
import io
import itertools

import pytest
import torch

import scrapl.warmup.probs as probs_mod
from scrapl.warmup.probs import (
    ThetaISState,
    aggregate_vals,
    check_agg,
    check_probs,
    closed_form_probs,
)

# vals_p.pt of the README warmup example run with scrapl-loss 0.1.0 (scrapl-algorithms.md §10)
README_VALS = torch.tensor(
    [
        [0.98978156, 0.12559634, 0.20162249],
        [1.00823474, 0.13492084, 0.14064932],
        [0.93892694, 0.07879747, 0.15649408],
        [0.90588975, 0.11993354, 0.16783240],
        [1.01377416, 0.13523124, 0.14177907],
        [0.92476732, 0.07410671, 0.15564945],
        [0.88787484, 0.11573916, 0.16539922],
    ]
)
README_PROBS = [0.16235346, 0.14924328, 0.12660351, 0.14578119, 0.14998550, 0.12365297, 0.14238009]


def full_state(vals, *, min_prob_frac=0.0, order=None):
    P, nt = vals.shape
    s = ThetaISState(n_paths=P, n_theta=nt, min_prob_frac=min_prob_frac)
    for p in order if order is not None else range(P):
        s.update_path(p, vals[p])
    return s


def test_readme_run_probabilities():
    s = full_state(README_VALS)
    assert s.probs.tolist() == pytest.approx(README_PROBS, abs=2e-8)
    assert (s.probs.min().item(), s.probs.max().item()) == pytest.approx((0.123653, 0.162353), abs=1e-6)


@pytest.mark.parametrize("mpf", [0.0, 1e-6, 0.1, 0.5])
def test_full_update_is_the_closed_form(mpf):
    vals = torch.rand(9, 4, generator=torch.Generator().manual_seed(1)) + 0.01
    s = full_state(vals, min_prob_frac=mpf)
    torch.testing.assert_close(s.probs, closed_form_probs(vals, min_prob_frac=mpf), rtol=1e-12, atol=1e-15)
    assert s.probs.min() >= mpf / 9 - 1e-15
    check_probs(s.probs, n_paths=9, atol=1e-12, min_prob=mpf / 9)
    # each θ row sums to 1 − mpf (the reference checks 1 here and fails for mpf > ~1e-5, Q2)
    torch.testing.assert_close(s.log_probs.exp().sum(1), torch.full((4,), 1 - mpf, dtype=torch.float64))


def test_closed_form_by_hand():
    vals = torch.tensor([[1.0, 2.0], [3.0, 2.0]])
    # θ0: [1/4, 3/4], θ1: [1/2, 1/2]; mean -> [3/8, 5/8]
    assert closed_form_probs(vals).tolist() == pytest.approx([0.375, 0.625], abs=1e-15)
    # with mpf 0.2: (0.8·π + 0.1) averaged
    assert closed_form_probs(vals, min_prob_frac=0.2).tolist() == pytest.approx(
        [0.8 * 0.375 + 0.1, 0.8 * 0.625 + 0.1], abs=1e-15
    )


def test_partial_mixture_example():
    s = ThetaISState(n_paths=7, n_theta=1)
    s.update(0, 2.0)
    assert torch.equal(s.probs, torch.full((7,), 1 / 7, dtype=torch.float64))  # m = 1: unchanged
    s.update(3, 1.0)
    p = s.probs.tolist()
    assert p[0] == pytest.approx(2 / 7 * 2 / 3, abs=1e-9)  # 0.190476
    assert p[3] == pytest.approx(2 / 7 * 1 / 3, abs=1e-9)  # 0.095238
    assert [p[i] for i in (1, 2, 4, 5, 6)] == pytest.approx([1 / 7] * 5, abs=1e-9)
    s.update(3, 4.0)  # re-update: m stays 2
    assert (s.probs[0].item(), s.probs[3].item()) == pytest.approx((0.095238, 0.190476), abs=1e-6)


def test_partial_mass_is_m_over_p():
    vals = torch.tensor([3.0, 1.0, 2.0, 5.0, 4.0, 1.5])
    s = ThetaISState(n_paths=10, n_theta=1)
    for p, v in enumerate(vals):
        s.update(p, v)
    expected = torch.full((10,), 0.1, dtype=torch.float64)
    expected[:6] = 0.6 * vals.double() / vals.sum()
    torch.testing.assert_close(s.probs, expected, rtol=1e-9, atol=1e-12)


def test_update_order_does_not_matter():
    vals = torch.rand(6, 2, generator=torch.Generator().manual_seed(3)) + 0.1
    ref = full_state(vals).probs
    for order in list(itertools.permutations(range(6)))[::97]:
        torch.testing.assert_close(full_state(vals, order=order).probs, ref, rtol=1e-12, atol=1e-15)


def test_zero_value_is_clamped_to_eps():
    s = ThetaISState(n_paths=7, n_theta=1)
    for p in range(7):
        s.update(p, 0 if p == 2 else 1.0)
    assert s.probs[2].item() == pytest.approx(1e-12 / 6, rel=1e-3)
    assert s.probs.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_accepts_ints_and_tensors():
    a, b = ThetaISState(n_paths=3, n_theta=1), ThetaISState(n_paths=3, n_theta=1)
    for p, v in enumerate([1, 2, 3]):
        a.update(p, v)  # Python ints (the reference fails, Q22)
        b.update(torch.tensor(p), torch.tensor([float(v)]))
    assert torch.equal(a.probs, b.probs)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda s: s.update(7, 1.0), ValueError, "path_idx"),
        (lambda s: s.update(-1, 1.0), ValueError, "path_idx"),
        (lambda s: s.update(True, 1.0), TypeError, "path_idx"),
        (lambda s: s.update(0, 1.0, theta_idx=2), ValueError, "theta_idx"),
        (lambda s: s.update(0, -1.0), ValueError, "val"),
        (lambda s: s.update(0, float("nan")), ValueError, "val"),
        (lambda s: s.update(0, "1"), TypeError, "val"),
        (lambda s: s.update(0, torch.ones(2)), TypeError, "val"),
        (lambda s: s.update_path(0, [1.0]), ValueError, "n_theta"),
    ],
)
def test_update_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(ThetaISState(n_paths=7, n_theta=2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_paths": 0, "n_theta": 1}, "n_paths"),
        ({"n_paths": 3, "n_theta": 0}, "n_theta"),
        ({"n_paths": 3, "n_theta": 1, "min_prob_frac": 1.0}, "min_prob_frac"),
        ({"n_paths": 3, "n_theta": 1, "min_prob_frac": -0.1}, "min_prob_frac"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ThetaISState(**kwargs)


@pytest.mark.parametrize(
    "probs, kwargs, exc, match",
    [
        (torch.full((4,), 0.25, dtype=torch.float64), {}, None, None),
        (torch.full((4,), 0.25) + 1e-7, {}, None, None),
        (torch.full((3,), 1 / 3), {}, ValueError, "shape"),
        (torch.tensor([0.5, 0.6, -0.1, 0.0]), {}, ValueError, "negative"),
        (torch.tensor([0.5, 0.5, 0.1, 0.0]), {}, ValueError, "sum to 1"),
        (torch.tensor([0.5, 0.5, float("nan"), 0.0]), {}, ValueError, "non-finite"),
        (torch.tensor([0.7, 0.1, 0.1, 0.1]), {"min_prob": 0.2}, ValueError, "floor"),
        (torch.tensor([1, 0, 0, 0]), {}, TypeError, "floating"),
    ],
)
def test_check_probs(probs, kwargs, exc, match):
    if exc is None:
        check_probs(probs, n_paths=4, **kwargs)
    else:
        with pytest.raises(exc, match=match):
            check_probs(probs, n_paths=4, **kwargs)


def test_state_dict_roundtrip_weights_only():
    s = ThetaISState(n_paths=5, n_theta=2, min_prob_frac=0.1)
    for p in (0, 2, 4):
        s.update_path(p, [p + 1.0, 2.0 / (p + 1)])
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    t = ThetaISState(n_paths=5, n_theta=2)
    t.load_state_dict(loaded)
    assert torch.equal(t.probs, s.probs) and t.updated == s.updated
    assert t.min_prob_frac == 0.1
    for p in (1, 3):  # continuing gives the same as never having saved
        s.update_path(p, [1.0, 1.0])
        t.update_path(p, [1.0, 1.0])
    assert torch.equal(t.probs, s.probs)
    with pytest.raises(ValueError, match="n_paths"):
        ThetaISState(n_paths=6, n_theta=2).load_state_dict(loaded)


def test_reset_is_uniform_even_with_floor():
    s = full_state(README_VALS, min_prob_frac=0.3)
    s.reset()
    assert torch.equal(s.probs, torch.full((7,), 1 / 7, dtype=torch.float64))
    assert all(not u for u in s.updated)
    s.update(0, 1.0)
    s.update(1, 3.0)
    assert s.probs.sum().item() == pytest.approx(1.0, abs=1e-12)  # no Q2 crash


def test_aggregate_vals():
    vals = torch.tensor([[1.0, 8.0], [4.0, 2.0], [3.0, 6.0], [2.0, 4.0]])
    assert aggregate_vals(vals, "med").tolist() == [2.0, 4.0]  # lower middle of 4
    assert aggregate_vals(vals, "mean").tolist() == [2.5, 5.0]
    assert aggregate_vals(vals, "max").tolist() == [4.0, 8.0]
    assert aggregate_vals(vals[:1], "none").tolist() == [1.0, 8.0]
    with pytest.raises(ValueError, match="one row"):
        aggregate_vals(vals, "none")
    with pytest.raises(ValueError, match="agg"):
        aggregate_vals(vals, "bogus")
    with pytest.raises(ValueError, match="agg"):
        check_agg(None)


def test_docstring_examples():
    assert doctest.testmod(probs_mod, extraglobs={"torch": torch}).failed == 0
