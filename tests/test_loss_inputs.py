"""The boundary of SCRAPLLoss.forward: device, dtype, NaN/inf, and the generator of unseeded draws."""

from __future__ import annotations

import io

import pytest
import torch

from scrapl import SCRAPLLoss

A = dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)


@pytest.fixture(scope="module")
def loss_A():
    return SCRAPLLoss(**A)


def _xy(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(2, 1, 8096, generator=g), torch.randn(2, 1, 8096, generator=g)
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("which", ["x", "x_target"])
def test_a_signal_on_another_device_is_refused_naming_it(loss_A, which):
    x, y = _xy()
    args = {"x": x, "x_target": y}
    args[which] = torch.empty(2, 1, 8096, device="meta")
    with pytest.raises(ValueError, match=rf"^{which} is on device meta, but the loss is on cpu"):
        loss_A(args["x"], args["x_target"], path_idx=0)


@pytest.mark.parametrize("which", ["x", "x_target"])
def test_a_higher_precision_than_the_loss_is_refused_naming_it(loss_A, which):
    """float64 signals into the (float32) loss: an error, not a silent float32 computation."""
    x, y = _xy()
    args = {"x": x, "x_target": y}
    args[which] = args[which].double()
    with pytest.raises(
        TypeError, match=rf"^{which} has dtype torch.float64, but the loss computes in torch.float32"
    ):
        loss_A(args["x"], args["x_target"], path_idx=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_lower_precision_signals_are_cast_up(loss_A, dtype):
    """Half-precision signals (autocast outputs) compute in float32: the value of the cast input."""
    x, y = _xy(dtype)
    value = loss_A(x, y, path_idx=3)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, loss_A(x.float(), y.float(), path_idx=3), rtol=0, atol=0)


def test_a_double_loss_computes_float32_signals_in_float64():
    loss = SCRAPLLoss(**A).double()
    x, y = _xy()
    value = loss(x, y, path_idx=3)
    assert value.dtype == torch.float64
    torch.testing.assert_close(value, loss(x.double(), y.double(), path_idx=3), rtol=0, atol=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("which", ["x", "x_target"])
def test_check_finite_names_the_signal(which, bad):
    loss = SCRAPLLoss(**A, check_finite=True)
    x, y = _xy()
    (x if which == "x" else y)[1, 0, 17] = bad
    with pytest.raises(ValueError, match=rf"^{which} has 1 non-finite value"):
        loss(x, y, path_idx=0)


def test_without_check_finite_a_nan_signal_gives_a_nan_loss(loss_A):
    """The documented default: no check (no device synchronisation), the NaN propagates."""
    x, y = _xy()
    x[0, 0, 5] = float("nan")
    assert torch.isnan(loss_A(x, y, path_idx=0))


def _draws(loss, n=12):
    return [loss.sample_path() for _ in range(n)]


def test_generator_makes_unseeded_draws_reproducible_without_the_global_rng():
    a = SCRAPLLoss(**A, generator=torch.Generator().manual_seed(7))
    b = SCRAPLLoss(**A, generator=torch.Generator().manual_seed(7))
    state = torch.get_rng_state()
    draws = _draws(a)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    torch.manual_seed(999)  # and does not matter
    assert _draws(b) == draws
    expected = torch.multinomial(a.probs.expand(12, -1), 1, generator=torch.Generator().manual_seed(7))
    assert len(set(draws)) > 1 and draws[0] == expected[0].item()


def test_default_draws_still_come_from_the_global_rng():
    loss = SCRAPLLoss(**A)
    torch.manual_seed(5)
    draws = _draws(loss)
    torch.manual_seed(5)
    assert draws == [torch.multinomial(loss.probs, 1).item() for _ in range(12)]


def test_generator_state_is_saved_and_resumed():
    loss = SCRAPLLoss(**A, generator=torch.Generator().manual_seed(3))
    _draws(loss, 5)
    buf = io.BytesIO()
    torch.save(loss.state_dict(), buf)
    ahead = _draws(loss)
    buf.seek(0)
    resumed = SCRAPLLoss(**A)  # no generator given: the saved one is restored
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    assert _draws(resumed) == ahead


@pytest.mark.parametrize("bad", [3, "cpu"])
def test_bad_generator_is_refused(bad):
    with pytest.raises(TypeError, match="generator must be a CPU torch.Generator"):
        SCRAPLLoss(**A, generator=bad)
