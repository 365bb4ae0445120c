"""run_warmup: preconditions before compute, logging, progress, engines, start vectors."""

from __future__ import annotations

import logging

import pytest
import torch
from test_warmup_toy import dense_operators, make_toy

from scrapl.warmup import check_is_deterministic, closed_form_probs

TOY = make_toy()


def call(toy=None, **kwargs):
    return (toy or make_toy()).warmup(**kwargs)


def with_grad():
    toy = make_toy()
    toy.params[1].grad = torch.zeros_like(toy.params[1])
    return {"toy": toy}


def frozen():
    toy = make_toy()
    toy.params[0].requires_grad_(False)
    return {"toy": toy}


BAD = [
    ("params empty", lambda: {"params": []}, ValueError, "params must contain at least one tensor"),
    ("params tensor", lambda: {"params": TOY.params[0]}, TypeError, "params"),
    ("params not tensors", lambda: {"params": [1.0]}, TypeError, r"params\[0\]"),
    ("prior grad", with_grad, ValueError, r"params\[1\] already has a gradient"),
    ("frozen param", frozen, ValueError, r"params\[0\] does not require grad"),
    ("duplicate param", lambda: {"params": TOY.params + TOY.params[:1]}, ValueError, "more than once"),
    ("kwargs empty", lambda: {"theta_fn_kwargs": []}, ValueError, "theta_fn_kwargs must not"),
    (
        "kwargs dict",
        lambda: {"theta_fn_kwargs": {"x": TOY.batches[0]}},
        TypeError,
        "theta_fn_kwargs must be a list",
    ),
    ("kwargs no x", lambda: {"theta_fn_kwargs": [{"y": TOY.batches[0]}]}, ValueError, "'x'"),
    (
        "synth kwargs length",
        lambda: {"synth_fn_kwargs": [{}, {}]},
        ValueError,
        r"len\(synth_fn_kwargs\)=2 != len\(theta_fn_kwargs\)=1",
    ),
    ("synth kwargs type", lambda: {"synth_fn_kwargs": [1]}, TypeError, r"synth_fn_kwargs\[0\]"),
    ("start >= end", lambda: {"start_path_idx": 2, "end_path_idx": 2}, ValueError, "start"),
    ("end > P", lambda: {"end_path_idx": 5}, ValueError, "n_paths=4"),
    ("negative start", lambda: {"start_path_idx": -1}, ValueError, "start_path_idx"),
    ("float end", lambda: {"end_path_idx": 2.0}, TypeError, "end_path_idx"),
    ("agg", lambda: {"agg": "bogus"}, ValueError, "agg must be one of"),
    ("n_iter", lambda: {"n_iter": 0}, ValueError, "n_iter"),
    ("tol", lambda: {"tol": -1.0}, ValueError, "tol"),
    ("n_paths", lambda: {"n_paths": 0}, ValueError, "n_paths"),
    ("n_theta", lambda: {"n_theta": True}, TypeError, "n_theta"),
    ("engine", lambda: {"engine": "fast"}, ValueError, "engine"),
    ("theta_batching", lambda: {"theta_batching": "auto"}, ValueError, "theta_batching"),
    ("distributed", lambda: {"distributed": 1}, ValueError, "distributed"),
    ("progress", lambda: {"progress": "yes"}, TypeError, "progress"),
    ("hessian", lambda: {"hessian": "diag"}, ValueError, "hessian"),
    ("jacobian", lambda: {"jacobian": True}, ValueError, "jacobian"),
    ("method", lambda: {"method": "lanczos"}, ValueError, "method"),
    ("init", lambda: {"init": "rand"}, ValueError, "init"),
    ("seed", lambda: {"seed": 1.5}, TypeError, "seed"),
    ("path_loss", lambda: {"path_loss": None}, TypeError, "path_loss must be callable"),
    ("save_dir", lambda: {"save_dir": 3}, TypeError, "save_dir"),
    ("config", lambda: {"config": {"a": object()}}, TypeError, "JSON"),
    ("distributed=True alone", lambda: {"distributed": True}, ValueError, "init_process_group"),
]


@pytest.mark.parametrize("name, make, exc, match", BAD, ids=[b[0] for b in BAD])
def test_preconditions_fail_before_any_compute(name, make, exc, match, tmp_path):
    kwargs = make()
    toy = kwargs.pop("toy", None) or make_toy()
    kwargs.setdefault("save_dir", tmp_path / "w")
    with pytest.raises(exc, match=match):
        call(toy, **kwargs)
    assert toy.calls == {"theta_fn": 0, "path_loss": 0}
    assert not (tmp_path / "w").exists()


def test_theta_shape_is_checked():
    toy = make_toy()
    with pytest.raises(ValueError, match="n_theta=2"):
        call(toy, n_theta=2)


def test_log_lines(caplog, tmp_path):
    with caplog.at_level(logging.INFO, logger="scrapl.warmup"):
        res = call(save_dir=tmp_path)
    msgs = [r.getMessage() for r in caplog.records if r.name == "scrapl.warmup"]
    assert msgs[0] == (
        "Starting warmup_lc_hvp with agg = none for 4 parameter(s) and 1 "
        "batch(es), 8 iter (multibatch = False)"
    )
    for p in range(4):
        assert msgs[1 + p] == f"path_idx = {p}, curr_vals = {res.vals[p][0]}"
    assert msgs[5] == (f"Saving warmup SCRAPL sampling probabilities to {(tmp_path / 'probs.pt').resolve()}")


def test_log_lines_per_group(caplog):
    with caplog.at_level(logging.INFO, logger="scrapl.warmup"):
        res = call(agg="max", end_path_idx=1, force_multibatch=True)
    msgs = [r.getMessage() for r in caplog.records if r.name == "scrapl.warmup"]
    assert "(multibatch = True)" in msgs[0] and len(msgs) == 1 + 4
    assert msgs[1:] == [f"path_idx = 0, curr_vals = {res.vals[0][g]}" for g in range(4)]


def test_custom_logger(caplog):
    logger = logging.getLogger("scrapl.scrapl_loss")
    with caplog.at_level(logging.INFO, logger="scrapl.scrapl_loss"):
        call(end_path_idx=1, logger=logger)
    assert {r.name for r in caplog.records} == {"scrapl.scrapl_loss"}


def test_progress_bar(capsys):
    call(progress=True)
    err = capsys.readouterr().err
    assert "theta-IS warmup" in err and "4/4" in err and "path 3:" in err


def test_nondeterminism_warns_or_raises(caplog):
    toy = make_toy()
    encoder = toy.encoder

    def noisy(x):
        return encoder(x.squeeze(1)) + 1e-3 * torch.rand(x.shape[0], toy.n_theta, dtype=x.dtype)

    assert not check_is_deterministic(noisy, {"x": toy.batches[0]}, toy.synth_fn)
    assert check_is_deterministic(toy.theta_fn, {"x": toy.batches[0]}, toy.synth_fn)
    with caplog.at_level(logging.WARNING):
        call(toy, theta_fn=noisy, end_path_idx=1, n_iter=2)
    assert "theta_fn is not deterministic" in caplog.text
    with pytest.raises(ValueError, match="not deterministic"):
        call(toy, theta_fn=noisy, end_path_idx=1, strict_determinism=True)


@pytest.mark.parametrize("theta_batching", ["loop", "vmap"])
def test_engines_agree(theta_batching):
    direct = call(engine="direct", n_iter=30, tol=1e-9)
    factored = call(engine="factored", n_iter=30, tol=1e-9, theta_batching=theta_batching)
    for p in range(4):
        torch.testing.assert_close(factored.vals[p], direct.vals[p], rtol=1e-6, atol=0)


@pytest.mark.parametrize("agg", ["none", "mean"])
def test_jacobian_modes_agree_and_j_is_built_once_per_run(agg, monkeypatch):
    """jacobian="on" (J built once per run, J v and Jᵀ Y as matrix products) and "off" (two
    backward passes per product) give the same values, per group too; "auto" builds J only when
    the run expects at least twice as many products as θ has entries (here 3 · 3 = 9)."""
    import scrapl.warmup.curvature as curvature

    built = []
    real = curvature.encoder_jacobian

    def spy(theta, params):
        built.append(theta.shape)
        return real(theta, params)

    monkeypatch.setattr(curvature, "encoder_jacobian", spy)
    toy = make_toy()
    on = call(toy, jacobian="on", n_iter=60, tol=1e-12, agg=agg)
    assert built == [(3, 3)]  # one J for 4 paths and every group
    # one forward per run (+ 2 by the determinism check, + 1 by the automatic engine choice)
    assert toy.calls["theta_fn"] == 1 + 2 + 1
    off = call(jacobian="off", n_iter=60, tol=1e-12, agg=agg)
    assert len(built) == 1
    for p in range(4):
        torch.testing.assert_close(on.vals[p], off.vals[p], rtol=1e-9, atol=0)
    call(end_path_idx=2, n_iter=4)  # auto: 2 paths · 3 θ · 4 // 2 = 12 expected products < 18
    assert len(built) == 1
    call(end_path_idx=2, n_iter=6)  # 18: built
    assert len(built) == 2


def test_shared_encoder_auto_rule_and_memory_cap():
    from scrapl.warmup.curvature import SharedEncoder

    toy = make_toy()
    n = sum(p.numel() for p in toy.params)
    for jac, expected, cap, want in [
        ("auto", 18, 2**28, True),
        ("auto", 17, 2**28, False),
        ("auto", 10**6, 9 * n * 8 - 1, False),  # J (9 · n float64) over the cap
        ("on", 0, 0, True),
        ("off", 10**6, 2**28, False),
    ]:
        shared = SharedEncoder(jacobian=jac, expected_products=expected, max_bytes=cap)
        theta = shared.theta(0, _batch(toy), toy.theta_fn)
        assert shared.theta(0, _batch(toy), toy.theta_fn) is theta  # computed once
        J = shared.group_jacobian(0, toy.params, toy.params[2:])
        assert (J is not None) == want
        if want:
            assert J.shape == (3, 3, sum(p.numel() for p in toy.params[2:]))


def _batch(toy):
    from scrapl.warmup import WarmupBatch

    return WarmupBatch(theta_fn_kwargs=toy.theta_fn_kwargs[0], target=toy.batches[0], synth_fn_kwargs={})


def test_hessian_probe_decides_once_per_run(monkeypatch):
    """hessian="auto" probes the θ-Hessian's structure on the first path whose probe responds and
    keeps the decision: the same values as building that structure on every path."""
    import scrapl.warmup.factored as factored

    probes = []
    real = factored._block_probe

    def spy(*args):
        out = real(*args)
        probes.append(out[2])
        return out

    monkeypatch.setattr(factored, "_block_probe", spy)
    call(n_iter=3)
    assert probes == [True]
    coupled = make_toy(coupled=True)
    auto = call(coupled, n_iter=60, tol=1e-12)
    assert probes == [True, True]
    full = call(coupled, hessian="full", n_iter=60, tol=1e-12)
    for p in range(4):
        torch.testing.assert_close(auto.vals[p], full.vals[p], rtol=1e-12, atol=0)
    toy = make_toy()  # path 0 has no gradient: its probe says nothing, path 1 probes again
    silent = call(toy, path_loss=lambda x_hat, x, p: toy.path_loss(x_hat, x, p) * (p > 0), n_iter=3)
    assert probes == [True, True, False, True]
    assert silent.vals[0].abs().max() == 0


def test_arnoldi_values_against_dense_and_recorded_in_the_configuration(tmp_path):
    """method="arnoldi": |λ_max| of the dense operators (exact once the Krylov space is complete);
    the method is part of the recorded configuration, so a directory made with "power" refuses to
    resume with "arnoldi"."""
    toy = make_toy()
    res = call(toy, method="arnoldi", n_iter=80, tol=1e-10, save_dir=tmp_path / "a")
    for p in range(4):
        A = dense_operators(toy, p)
        for u in range(3):
            top = torch.linalg.eigvals(A[u]).abs().max().item()
            assert res.vals[p][0, u].item() == pytest.approx(top, rel=1e-7)
    assert res.config["method"] == "arnoldi"
    assert "method" not in call(end_path_idx=1).config  # power: as recorded before the option
    call(end_path_idx=1, save_dir=tmp_path / "p")
    with pytest.raises(ValueError, match="configuration"):
        call(method="arnoldi", save_dir=tmp_path / "p")


def test_values_and_probs_against_dense(tmp_path):
    """Converged warmup values are |λ_max| of the dense operators; probs are Eq. (10)."""
    toy = make_toy()
    res = call(toy, n_iter=400, tol=1e-12, min_prob_frac=0.2)
    table = torch.stack([res.vals[p][0] for p in range(4)])  # (P, nθ)
    for p in range(4):
        A = dense_operators(toy, p)
        for u in range(3):
            ev = torch.linalg.eigvals(A[u]).abs().sort(descending=True).values
            if ev[1] < 0.95 * ev[0]:
                assert table[p, u].item() == pytest.approx(ev[0].item(), rel=1e-2)
    torch.testing.assert_close(res.probs, closed_form_probs(table, min_prob_frac=0.2), rtol=1e-12, atol=1e-15)


def test_seeded_init_is_shard_and_order_invariant():
    whole = call()
    parts = {
        **call(end_path_idx=1).vals,
        **call(start_path_idx=1, end_path_idx=3).vals,
        **call(start_path_idx=3).vals,
    }
    for p in range(4):
        assert torch.equal(parts[p], whole.vals[p])
    state = torch.get_rng_state()
    call(end_path_idx=1)
    assert torch.equal(torch.get_rng_state(), state)  # seeded init leaves the global RNG alone


def test_chain_init_starts_from_the_previous_paths_eigenvectors(monkeypatch):
    """init="chain": path 0 starts seeded, every next computed path from the eigenvectors of the
    one before; converged values are those of seeded starts, per group too (agg="mean")."""
    import scrapl.warmup.driver as driver

    for agg in ("none", "mean"):
        starts: dict[int, list[torch.Tensor]] = {}
        real = driver.path_curvatures

        def spy(*args, starts=starts, real=real, **kw):
            starts[kw["path_idx"]] = [v.clone() for v in kw["init_vectors"]]
            return real(*args, **kw)

        monkeypatch.setattr(driver, "path_curvatures", spy)
        chain = call(init="chain", n_iter=400, tol=1e-12, agg=agg)
        monkeypatch.setattr(driver, "path_curvatures", real)
        seeded = call(n_iter=400, tol=1e-12, agg=agg)
        first = call(init="seeded", end_path_idx=1, n_iter=400, tol=1e-12, agg=agg)
        assert torch.equal(chain.vals[0], first.vals[0])  # path 0: the seeded start
        for p in range(1, 4):
            for g, start in enumerate(starts[p]):
                assert torch.equal(start, chain.convergence[p - 1][g].eigenvectors)
        for p in range(4):
            torch.testing.assert_close(chain.vals[p], seeded.vals[p], rtol=1e-4, atol=0)
        assert chain.config["init"] == "chain"
    # a range (or a resumed run) restarts the chain: its first path starts seeded
    assert torch.equal(call(init="chain", start_path_idx=2, n_iter=3).vals[2], call(n_iter=3).vals[2])
    assert not torch.equal(call(init="chain", n_iter=3).vals[2], call(n_iter=3).vals[2])


def _reference_draws(n_draws: int, dim: int) -> None:
    for _ in range(n_draws):  # per path and θ: rand(n) then an unused randn(n)
        torch.rand(dim)
        torch.randn(dim)


def test_reference_init_replays_and_advances_global_rng():
    toy = make_toy()
    dim = sum(p.numel() for p in toy.params)
    torch.manual_seed(7)
    _reference_draws(toy.n_paths * toy.n_theta, dim)
    after_all = torch.get_rng_state()
    torch.manual_seed(7)
    whole = call(toy, init="reference")
    assert torch.equal(torch.get_rng_state(), after_all)  # left where the reference leaves it
    torch.manual_seed(7)
    head = call(toy, init="reference", end_path_idx=2)
    assert torch.equal(head.vals[0], whole.vals[0]) and torch.equal(head.vals[1], whole.vals[1])
    torch.manual_seed(7)
    _reference_draws(toy.n_theta, dim)
    after_one = torch.get_rng_state()
    torch.manual_seed(7)
    call(toy, init="reference", start_path_idx=2, end_path_idx=3)
    assert torch.equal(torch.get_rng_state(), after_one)


def test_power_iteration_report():
    res = call(end_path_idx=2, n_iter=50, tol=1e-6)
    assert res.computed == [0, 1]
    for p in (0, 1):
        (rep,) = res.convergence[p]
        assert rep.errors.shape[1] == 3 and rep.n_iters.max() == rep.errors.shape[0]
        assert all(
            rep.errors[n - 1, u] < 1e-6 for u, n in enumerate(rep.n_iters.tolist()) if rep.converged[u]
        )


@pytest.mark.parametrize("direct_weight", [False, True])
def test_engine_is_chosen_by_how_the_weights_reach_the_loss(direct_weight):
    """Factored unless a weight reaches the loss other than through θ; either way the values are
    the dense operators' (the toy's synth can add an encoder bias to x̂ directly)."""
    toy = make_toy(direct_weight=direct_weight)
    res = call(toy, n_iter=400, tol=1e-12, end_path_idx=1)
    assert res.config["engine"] == ("direct" if direct_weight else "factored")
    forced = call(
        make_toy(direct_weight=direct_weight), engine="direct", n_iter=400, tol=1e-12, end_path_idx=1
    )
    torch.testing.assert_close(res.vals[0], forced.vals[0], rtol=1e-6, atol=0)


def test_runs_under_no_grad():
    expected = call(end_path_idx=1)
    with torch.no_grad():
        got = call(end_path_idx=1)
    assert torch.equal(got.vals[0], expected.vals[0])


def test_docstring_example():
    import doctest

    import scrapl.warmup.driver as driver_mod

    assert doctest.testmod(driver_mod, extraglobs={"torch": torch}).failed == 0
