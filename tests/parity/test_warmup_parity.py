"""θ-IS warmup parity with scrapl-loss 0.1.0 (the ``scrapl_ref`` oracle).

The reference's SCRAPLLoss (the seed's warmup configuration: N=8096, J=3, Q1=1, Q2=1, J_fr=2,
Q_fr=1, nθ=3, P=7) serves as the ``path_loss`` of our warmup, called in eval mode so that it
counts nothing. Our warmup in reference-compatible mode (``init="reference"``: the same U[0,1)
start vectors replayed from the same global RNG state, the same stopping rule) is compared with
the reference's ``warmup_lc_hvp`` on a few paths with a small ``n_iter`` (the full run takes
minutes; its numbers are in the task report).
"""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from scrapl.warmup import (
    Strategy,
    ThetaISState,
    WarmupOptions,
    dense_matvec,
    load_warmup_dir,
    power_iteration,
    run_warmup,
)

N_SAMPLES, N_THETA, BATCH = 8096, 3, 4


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: steadier timings on a shared 2-core machine (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def seed_example(scrapl_ref):
    """The seed README's warmup example: models, data and the reference loss."""
    with torch.random.fork_rng():
        torch.manual_seed(42)
        encoder = nn.Sequential(
            nn.Linear(N_SAMPLES, N_THETA), nn.PReLU(), nn.Linear(N_THETA, N_THETA), nn.Sigmoid()
        )
        decoder = nn.Sequential(
            nn.Linear(N_THETA, N_THETA), nn.PReLU(), nn.Linear(N_THETA, N_SAMPLES), nn.Tanh()
        )
        batches = [torch.rand((BATCH, 1, N_SAMPLES)) for _ in range(2)]
    loss = scrapl_ref.SCRAPLLoss(shape=N_SAMPLES, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1, n_theta=N_THETA)
    logging.getLogger("scrapl_ref").setLevel(logging.WARNING)
    return {
        "encoder": encoder,
        "decoder": decoder,
        "batches": batches,
        "loss": loss,
        "theta_fn": lambda x: encoder(x.squeeze(1)),
        "synth_fn": lambda theta: decoder(theta).unsqueeze(1),
    }


def reference_warmup(ex, seed, save_dir, *, n_batches=1, params=None, **kwargs):
    loss = ex["loss"]
    loss.clear()
    loss.train()
    torch.manual_seed(seed)
    loss.warmup_lc_hvp(
        theta_fn=ex["theta_fn"],
        synth_fn=ex["synth_fn"],
        theta_fn_kwargs=[{"x": b} for b in ex["batches"][:n_batches]],
        params=params or list(ex["encoder"].parameters()),
        save_dir=str(save_dir),
        **kwargs,
    )
    vals = {
        p: torch.load(save_dir / f"vals_{p}.pt", weights_only=True)
        for p in range(kwargs.get("start_path_idx", 0), kwargs["end_path_idx"])
    }
    return vals, loss.probs.clone(), torch.get_rng_state()


def our_warmup(ex, seed, *, n_batches=1, start_path_idx=0, params=None, engine=None, **kwargs):
    loss = ex["loss"]
    loss.clear()
    loss.eval()  # eval mode: the reference loss counts nothing
    torch.manual_seed(seed)
    res = run_warmup(
        lambda x_hat, x, p: loss(x, x_hat, path_idx=p),
        ex["theta_fn"],
        ex["synth_fn"],
        [{"x": b} for b in ex["batches"][:n_batches]],
        params or list(ex["encoder"].parameters()),
        n_paths=loss.n_paths,
        n_theta=N_THETA,
        options=WarmupOptions(
            save_dir=None, init="reference", start_path_idx=start_path_idx, progress=False, **kwargs
        ),
        strategy=Strategy(engine=engine),
    )
    assert not loss.path_counts
    loss.train()
    return res, torch.get_rng_state()


@pytest.fixture(scope="module")
def reference_two_paths(seed_example, tmp_path_factory):
    """The reference's warmup of paths 0 and 1 with n_iter 6 (global seed 42)."""
    return reference_warmup(seed_example, 42, tmp_path_factory.mktemp("ref"), n_iter=6, end_path_idx=2)


@pytest.mark.parametrize("engine, rtol", [("direct", 2e-6), ("factored", 2e-5)])
def test_warmup_values_match_reference(seed_example, reference_two_paths, engine, rtol):
    """Paths 0 and 1, n_iter 6: same values (to the power iteration's float32 rounding), same
    probabilities, and the same global RNG state afterwards (the same draws were made)."""
    ref_vals, ref_probs, ref_rng = reference_two_paths
    ours, our_rng = our_warmup(seed_example, 42, n_iter=6, end_path_idx=2, engine=engine)
    for p in (0, 1):
        torch.testing.assert_close(ours.vals[p], ref_vals[p], rtol=rtol, atol=0)
    torch.testing.assert_close(ours.probs, ref_probs, rtol=0, atol=1e-6)
    assert torch.equal(our_rng, ref_rng)


def test_multibatch_matches_reference(seed_example, tmp_path):
    """Two different batches (summed, Q14), one path, two power-iteration steps."""
    ref_vals, _, ref_rng = reference_warmup(
        seed_example, 3, tmp_path, n_batches=2, n_iter=2, start_path_idx=4, end_path_idx=5
    )
    for engine, batching in (("factored", "loop"), ("factored", "vmap"), ("direct", "loop")):
        ours, our_rng = our_warmup(
            seed_example,
            3,
            n_batches=2,
            n_iter=2,
            start_path_idx=4,
            end_path_idx=5,
            engine=engine,
            theta_batching=batching,
        )
        torch.testing.assert_close(ours.vals[4], ref_vals[4], rtol=2e-5, atol=0)
        assert torch.equal(our_rng, ref_rng)


def test_per_tensor_agg_matches_reference(seed_example, tmp_path):
    """agg='med' with two parameter tensors: one operator per tensor (its diagonal block of A_u),
    then the median per θ, which for two groups is the lower value (torch.median)."""
    enc = seed_example["encoder"]
    params = [enc[0].bias, enc[2].weight]
    ref_vals, ref_probs, ref_rng = reference_warmup(
        seed_example, 5, tmp_path, agg="med", params=params, n_iter=3, start_path_idx=6, end_path_idx=7
    )
    ours, our_rng = our_warmup(
        seed_example, 5, agg="med", params=params, n_iter=3, start_path_idx=6, end_path_idx=7
    )
    assert ours.vals[6].shape == ref_vals[6].shape == (2, N_THETA)
    torch.testing.assert_close(ours.vals[6], ref_vals[6], rtol=2e-5, atol=1e-7)
    assert torch.equal(our_rng, ref_rng)
    state = ThetaISState(n_paths=7, n_theta=N_THETA)
    load_warmup_dir(tmp_path, state=state, agg="med", allow_missing=True)
    seed_example["loss"].load_probs_from_warmup_dir(str(tmp_path), agg="med")
    torch.testing.assert_close(state.probs, seed_example["loss"].probs, rtol=0, atol=1e-15)


def test_update_prob_matches_reference(seed_example):
    """Random update sequences (repeats, partial and complete) give the reference's state."""
    ref = seed_example["loss"]
    gen = torch.Generator().manual_seed(0)
    for trial in range(3):
        ref.clear()
        ours = ThetaISState(n_paths=ref.n_paths, n_theta=N_THETA)
        order = torch.randint(0, ref.n_paths, (12,), generator=gen).tolist() + list(range(7))
        for p in order:
            for u in range(N_THETA):
                v = float(torch.rand((), generator=gen)) * 2.0 + (0.0 if trial else 1e-3)
                ref.update_prob(p, v, u)
                ours.update(p, v, u)
                torch.testing.assert_close(ours.probs, ref.probs, rtol=0, atol=1e-15)
        torch.testing.assert_close(ours.log_probs, ref.all_log_probs, rtol=0, atol=1e-12)
        torch.testing.assert_close(ours.log_vals, ref.all_log_vals, rtol=0, atol=0)
        assert ours.updated == [ref.updated_path_indices[u] for u in range(N_THETA)]
    ref.clear()


def test_power_iteration_rule_matches_vendored(scrapl_ref, capsys):
    """Same λ as hessian-eigenthings' power_iteration (the reference's) for the same start."""
    import hessian_eigenthings
    from hessian_eigenthings.operator import LambdaOperator

    gen = torch.Generator().manual_seed(1)
    for trial in range(4):
        A = torch.randn(30, 30, generator=gen)
        A = A + A.T if trial % 2 else A @ A.T / 30 + torch.diag(torch.rand(30, generator=gen))
        v0 = torch.rand(30, generator=gen)
        calls = []
        op = LambdaOperator(lambda v, A=A, calls=calls: calls.append(1) or A @ v, 30)
        lam, _ = hessian_eigenthings.power_iteration(op, steps=20, use_gpu=False, init_vec=v0.clone())
        res = power_iteration(dense_matvec(A[None]), v0[None], n_iter=20, tol=1e-4)
        assert res.eigenvalues.item() == pytest.approx(lam, rel=1e-6)
        assert res.n_iters.item() == len(calls)
    capsys.readouterr()  # the vendored code prints a progress bar


def test_scrapl_loss_warmup_matches_reference(seed_example, reference_two_paths):
    """The whole stack: our SCRAPLLoss (our JTFS) and its warmup_lc_hvp, reference start vectors,
    against the reference's warmup of paths 0 and 1: the same values (float32 power iteration on
    two float32 JTFS implementations), probabilities and global RNG state."""
    from scrapl import SCRAPLLoss

    ref_vals, ref_probs, ref_rng = reference_two_paths
    ex = seed_example
    loss = SCRAPLLoss(shape=N_SAMPLES, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1, n_theta=N_THETA)
    torch.manual_seed(42)
    res = loss.warmup_lc_hvp(
        ex["theta_fn"],
        ex["synth_fn"],
        [{"x": ex["batches"][0]}],
        list(ex["encoder"].parameters()),
        end_path_idx=2,
        save_dir=None,
        n_iter=6,
        engine="direct",
        init="reference",
        progress=False,
    )
    for p in (0, 1):
        torch.testing.assert_close(res.vals[p], ref_vals[p], rtol=1e-4, atol=0)
    torch.testing.assert_close(loss.probs, ref_probs, rtol=0, atol=1e-6)
    assert torch.equal(torch.get_rng_state(), ref_rng)
