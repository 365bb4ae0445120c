"""PathSampler on its own: the distribution it draws from, seeds, the first pass, its state."""

from __future__ import annotations

import pytest
import torch

from scrapl import PathSampler

PROBS = torch.tensor([0.5, 0.05, 0.25, 0.0, 0.2], dtype=torch.float64)


def _sampler(probs=PROBS, **kwargs):
    s = PathSampler(len(probs), **kwargs)
    s.set_probs(probs)
    return s


@pytest.mark.parametrize("seed", [0, 1])
def test_draw_frequencies_follow_probs(seed):
    """20,000 draws: every frequency within 4 standard deviations of its probability."""
    s = _sampler(generator=torch.Generator().manual_seed(seed))
    n = 20_000
    counts = torch.bincount(torch.tensor([s.sample() for _ in range(n)]), minlength=5).double()
    sd = (PROBS * (1 - PROBS) / n).sqrt()
    assert ((counts / n - PROBS).abs() <= 4 * sd + 1e-12).all()
    assert counts[3] == 0  # a zero-probability path is never drawn


@pytest.mark.parametrize("seed", [0, 42, 2**40])
def test_seeded_draw_is_a_function_of_the_seed_and_leaves_global_rng(seed):
    s = _sampler()
    state = torch.get_rng_state()
    first = s.sample(seed)
    assert all(s.sample(seed) == first for _ in range(5))
    assert first == torch.multinomial(PROBS, 1, generator=torch.Generator().manual_seed(seed)).item()
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("n_paths", [1, 7, 20])
def test_first_pass_is_a_permutation_then_probs(n_paths):
    s = PathSampler(n_paths, sample_all_paths_first=True, generator=torch.Generator().manual_seed(3))
    first = []
    for _ in range(n_paths):
        p = s.sample()
        s.record(p)
        first.append(p)
    assert sorted(first) == list(range(n_paths)) and not s.in_first_pass()


def test_evaluation_draws_do_not_use_up_the_first_pass():
    s = PathSampler(4, sample_all_paths_first=True)
    for _ in range(10):
        s.sample(training=False)
    assert len(s.unsampled_paths) == 4 and s.in_first_pass()


def test_state_dict_resumes_the_same_draws():
    s = _sampler(sample_all_paths_first=True, generator=torch.Generator().manual_seed(9))
    for _ in range(3):
        s.record(s.sample())
    saved = s.state_dict()
    ahead = [s.sample() for _ in range(10)]
    t = PathSampler(5, sample_all_paths_first=True)
    t.load_state_dict(saved)
    assert [t.sample() for _ in range(10)] == ahead
    assert torch.equal(t.probs, PROBS) and dict(t.path_counts) == dict(saved["path_counts"])


@pytest.mark.parametrize(
    "probs, exc, match",
    [
        (torch.full((4,), 0.25, dtype=torch.float64), ValueError, r"shape \(5,\)"),
        (torch.tensor([0.5, 0.5, 0.5, -0.5, 0.0], dtype=torch.float64), ValueError, "non-negative"),
        (torch.full((5,), 0.3, dtype=torch.float64), ValueError, "sum to 1"),
        (torch.ones(5, dtype=torch.long), TypeError, "floating"),
    ],
)
def test_set_probs_refuses_a_bad_distribution(probs, exc, match):
    s = PathSampler(5)
    with pytest.raises(exc, match=match):
        s.set_probs(probs)
    assert torch.equal(s.probs, torch.full((5,), 0.2, dtype=torch.float64))  # unchanged


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n_paths": 0}, ValueError, "n_paths"),
        ({"n_paths": 2.0}, TypeError, "n_paths"),
        ({"n_paths": 3, "sample_all_paths_first": 1}, TypeError, "sample_all_paths_first"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        PathSampler(**kwargs)
