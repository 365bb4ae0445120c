"""A seconds-long smoke run of the whole sound-matching pipeline (the ``quick`` preset): θ-IS warmup,
training with each objective, the files and figures, reproducibility by seed."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import replace

import pytest
import torch

pytest.importorskip("auraloss")
pytest.importorskip("matplotlib")

from scrapl.demo.config import RUNS, preset  # noqa: E402
from scrapl.demo.data import make_data  # noqa: E402
from scrapl.demo.run import (  # noqa: E402
    build_encoder,
    build_loss,
    build_synth,
    format_table,
    run_demo,
    theta_is_warmup,
)
from scrapl.demo.train import audio_objective, supervised_objective, train_run  # noqa: E402

QUICK = preset("quick")


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("scrapl").setLevel(logging.WARNING)
    yield
    logging.getLogger("scrapl").setLevel(logging.INFO)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    logging.getLogger("scrapl").setLevel(logging.WARNING)
    return run_demo(QUICK, out, progress=False), out


def test_every_run_is_made_and_scored(quick_run):
    result, _ = quick_run
    assert [h.name for h in result.histories] == list(RUNS)
    for h in result.histories:
        assert all(0.0 <= v <= 1.0 for v in h.test_l1)
        assert h.steps == [0, 4, 8, 12] and len(h.val_l1) == 4
        assert len(h.train_loss) == QUICK.steps


def test_theta_is_probabilities_are_a_distribution_over_the_paths(quick_run):
    result, _ = quick_run
    assert result.probs.shape == (len(result.paths),)
    assert result.probs.min() >= 0
    assert result.probs.sum().item() == pytest.approx(1.0, abs=1e-9)


def test_metrics_files_hold_the_results(quick_run):
    result, out = quick_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["runs"]) == list(RUNS)
    for h in result.histories:
        assert metrics["runs"][h.name]["test_l1"] == pytest.approx({"am": h.test_l1[0], "fm": h.test_l1[1]})
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["run"] for r in rows] == list(RUNS)
    assert float(rows[0]["test_l1_am_permille"]) == pytest.approx(
        1000 * result.histories[0].test_l1[0], abs=0.051
    )
    history = list(csv.DictReader((out / "val_history.csv").open()))
    assert len(history) == sum(len(h.steps) for h in result.histories)


@pytest.mark.parametrize("name", ["val_error.png", "theta_is_probs.png"])
def test_figures_are_png_files(quick_run, name):
    _, out = quick_run
    data = (out / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_table_has_a_row_per_run_and_the_middle_baseline(quick_run):
    result, _ = quick_run
    table = format_table(result)
    assert "always predict the middle" in table
    assert len(table.splitlines()) == 2 + len(RUNS) + 2  # header, rule, runs, baseline, note


def _full_distance(loss, encoder, synth, x, shifts):
    """Mean SCRAPL distance over every path between x and the reconstruction of the encoder's θ̂."""
    with torch.no_grad():
        x_hat = synth(encoder(x), shifts)
        return sum(loss(x_hat, x, path_idx=p).item() for p in range(loss.n_paths)) / loss.n_paths


def test_scrapl_training_with_theta_is_decreases_the_full_jtfs_distance():
    cfg = replace(QUICK, steps=40, batch_size=8, lr_scrapl=1e-2)
    synth = build_synth(cfg)
    data = make_data(synth, n_train=cfg.n_train, n_val=cfg.n_val, n_test=cfg.n_test, seed=cfg.seed)
    encoder, loss = build_encoder(cfg), build_loss(cfg)
    theta_is_warmup(cfg, loss, encoder, synth, data, save_dir=None, progress=False)
    x = synth(data.val.theta, data.val.shifts)
    shifts = synth.random_shifts(len(data.val), generator=torch.Generator().manual_seed(3))
    before = _full_distance(loss.eval(), encoder, synth, x, shifts)
    loss.train().attach_params(encoder.parameters())
    objective = audio_objective(loss, synth, generator=torch.Generator().manual_seed(1))
    sgd = torch.optim.SGD(encoder.parameters(), lr=cfg.lr_scrapl)
    train_run(
        "scrapl",
        encoder,
        synth,
        data,
        objective,
        sgd,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        eval_every=cfg.steps,
        seed=0,
        progress=False,
    )
    loss.attach_params([])
    after = _full_distance(loss.eval(), encoder, synth, x, shifts)
    assert after < 0.9 * before


def test_theta_warmup_values_are_the_per_example_curvatures():
    """``warmup_on="theta"``: θ̂ is its own encoder, so ``A_u`` is the ``θ_u`` block of the Hessian
    of the path loss in θ̂, diagonal over the examples (the loss is a mean of per-example terms):
    its dominant eigenvalue is ``max_b |∂²L_p/∂θ̂_{b,u}²|``, checked against double autograd."""
    cfg = replace(QUICK, warmup_on="theta", warmup_batch=3, warmup_iters=60, warmup_tol=1e-6)
    synth = build_synth(cfg)
    data = make_data(synth, n_train=cfg.n_train, n_val=cfg.n_val, n_test=cfg.n_test, seed=cfg.seed)
    encoder, loss = build_encoder(cfg), build_loss(cfg)
    before = [p.detach().clone() for p in encoder.parameters()]
    result = theta_is_warmup(cfg, loss, encoder, synth, data, save_dir=None, progress=False)
    b = data.train.batch(torch.arange(3))
    x = synth(b.theta, b.shifts)
    shifts_hat = synth.random_shifts(3, generator=torch.Generator().manual_seed(cfg.seed + 2))
    theta_hat = torch.rand(3, 2, generator=torch.Generator().manual_seed(cfg.seed + 3))
    for path in (0, loss.n_paths // 2, loss.n_paths - 1):
        theta = theta_hat.clone().requires_grad_()
        (grad,) = torch.autograd.grad(
            loss(synth(theta, shifts_hat), x, path_idx=path), theta, create_graph=True
        )
        diag = torch.stack(
            [
                torch.stack(
                    [torch.autograd.grad(grad[i, u], theta, retain_graph=True)[0][i, u] for u in (0, 1)]
                )
                for i in range(3)
            ]
        )  # (batch, 2): ∂²L/∂θ_{b,u}²
        expected = diag.abs().amax(0)
        torch.testing.assert_close(result.vals[path][0], expected, rtol=1e-3, atol=1e-6)
    assert all(torch.equal(p, q) for p, q in zip(encoder.parameters(), before, strict=True))
    with pytest.raises(ValueError, match="warmup_on must be 'encoder' or 'theta'"):
        replace(cfg, warmup_on="weights")


def test_warmup_tol_init_and_method_reach_the_power_iterations():
    """``warmup_tol`` reaches the power iteration: a loose tolerance stops every operator at least
    as early as a tight one, and some earlier; ``warmup_init`` is the warmup's ``init`` and
    ``warmup_method`` its ``method``; bad values of each are refused."""
    cfg = replace(QUICK, warmup_on="theta", warmup_batch=2, warmup_iters=30)
    synth = build_synth(cfg)
    data = make_data(synth, n_train=cfg.n_train, n_val=cfg.n_val, n_test=cfg.n_test, seed=cfg.seed)
    iters = {}
    for tol in (1e-6, 1e-2):
        loss = build_loss(cfg)
        result = theta_is_warmup(
            replace(cfg, warmup_tol=tol), loss, build_encoder(cfg), synth, data, save_dir=None, progress=False
        )
        iters[tol] = torch.cat([r.n_iters for c in result.convergence.values() for r in c])
    assert (iters[1e-2] <= iters[1e-6]).all() and (iters[1e-2] < iters[1e-6]).any()
    for bad in (0.0, 1.0, "1e-3", True):
        with pytest.raises(ValueError, match="warmup_tol must be in"):
            replace(cfg, warmup_tol=bad)
    for field, value, key, bad, message in [
        ("warmup_init", "chain", "init", "reference", "warmup_init must be 'seeded' or 'chain'"),
        ("warmup_method", "arnoldi", "method", "lanczos", "warmup_method must be 'power' or 'arnoldi'"),
    ]:
        result = theta_is_warmup(
            replace(cfg, **{field: value}),
            build_loss(cfg),
            build_encoder(cfg),
            synth,
            data,
            save_dir=None,
            progress=False,
        )
        assert result.config[key] == value
        with pytest.raises(ValueError, match=message):
            replace(cfg, **{field: bad})


def test_supervised_training_decreases_the_validation_error():
    """80 steps of the (tiny) quick encoder: the validation L1 error drops by more than a fifth."""
    cfg = replace(QUICK, steps=80, batch_size=8)
    synth = build_synth(cfg)
    data = make_data(synth, n_train=cfg.n_train, n_val=cfg.n_val, n_test=cfg.n_test, seed=cfg.seed)
    encoder = build_encoder(cfg)
    hist = train_run(
        "supervised",
        encoder,
        synth,
        data,
        supervised_objective,
        torch.optim.Adam(encoder.parameters(), lr=3e-3),
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        eval_every=cfg.steps,
        seed=0,
        progress=False,
    )
    before, after = sum(hist.val_l1[0]) / 2, sum(hist.val_l1[-1]) / 2
    assert after < 0.8 * before


def test_runs_are_reproducible_by_seed():
    cfg = replace(QUICK, runs=("scrapl_uniform", "supervised"), steps=6, eval_every=3)
    a, b = run_demo(cfg, None, progress=False), run_demo(cfg, None, progress=False)
    for ha, hb in zip(a.histories, b.histories, strict=True):
        assert ha.train_loss == hb.train_loss
        assert ha.val_l1 == hb.val_l1


def test_draw_seed_changes_only_the_path_draws():
    """``draw_seed`` reseeds the SCRAPL path draws; ``draw_seed == seed`` is the default run."""
    cfg = replace(QUICK, runs=("scrapl_uniform",), steps=6, eval_every=3)
    base = run_demo(cfg, None, progress=False).histories[0]
    same = run_demo(replace(cfg, draw_seed=cfg.seed), None, progress=False).histories[0]
    other = run_demo(replace(cfg, draw_seed=cfg.seed + 1), None, progress=False).histories[0]
    assert same.train_loss == base.train_loss and same.extra == base.extra
    assert other.extra["path_counts"] != base.extra["path_counts"]
    assert other.val_l1[0] == base.val_l1[0]  # same data and initial weights
    with pytest.raises(ValueError, match="draw_seed must be an int or None"):
        replace(cfg, draw_seed=1.5)


def test_parallel_runs_equal_sequential_runs():
    """Runs in two worker processes give exactly what they give one after the other."""
    cfg = replace(QUICK, runs=("scrapl_theta_is", "supervised"), steps=4, eval_every=2)
    seq = run_demo(cfg, None, progress=False, workers=1, threads=1)
    par = run_demo(cfg, None, progress=False, workers=2, threads=1)
    for hs, hp in zip(seq.histories, par.histories, strict=True):
        assert hs.name == hp.name
        assert hs.train_loss == hp.train_loss and hs.val_l1 == hp.val_l1
    assert torch.equal(seq.probs, par.probs)
    assert par.environment["parallel_runs"] == 2


def test_bad_workers():
    with pytest.raises(ValueError, match="workers"):
        run_demo(QUICK, None, progress=False, workers=0)


def test_learning_rate_decay_schedule():
    """``decay_frac``: lr held, then ``lr · (steps − k + 1) / (decay_frac · steps)`` at step k."""
    cfg = QUICK
    synth = build_synth(cfg)
    data = make_data(synth, n_train=cfg.n_train, n_val=cfg.n_val, n_test=cfg.n_test, seed=cfg.seed)
    encoder = build_encoder(cfg)
    sgd = torch.optim.SGD(encoder.parameters(), lr=0.01)
    seen = []
    train_run(
        "supervised",
        encoder,
        synth,
        data,
        supervised_objective,
        sgd,
        steps=8,
        batch_size=2,
        eval_every=8,
        seed=0,
        decay_frac=0.5,
        after_backward=lambda: seen.append(sgd.param_groups[0]["lr"]),
        progress=False,
    )
    assert seen == pytest.approx([0.01] * 4 + [0.01 * f for f in (1.0, 0.75, 0.5, 0.25)])
    with pytest.raises(ValueError, match="decay_frac must be in"):
        train_run("x", encoder, synth, data, supervised_objective, sgd, steps=1, batch_size=1,
                  eval_every=1, seed=0, decay_frac=1.5, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="decay_frac must be in"):
        replace(QUICK, decay_frac=-0.1)
    for bad in (1.0, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match=r"min_prob_frac must be in \[0, 1\)"):
            replace(QUICK, min_prob_frac=bad)
