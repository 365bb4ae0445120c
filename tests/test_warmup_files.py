"""Warmup files: atomic writes, configuration fingerprint, resume, probs.pt, loading a directory."""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch
from test_warmup_toy import make_toy

from scrapl.warmup import (
    ThetaISState,
    atomic_save,
    load_probs_file,
    load_warmup_dir,
    prepare_save_dir,
    read_meta,
    save_probs_file,
)
from scrapl.warmup.files import META_NAME, existing_val_paths, load_vals


def warmup(toy, save_dir, **kwargs):
    return toy.warmup(save_dir=save_dir, **kwargs)


def leftovers(d):
    return [f for f in os.listdir(d) if f.endswith(".tmp")]


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def test_atomic_save_replaces_or_keeps(tmp_path):
    path = tmp_path / "x.pt"
    atomic_save(torch.arange(3), path)
    assert torch.equal(torch.load(path, weights_only=True), torch.arange(3))
    atomic_save(torch.arange(4), path)
    assert torch.equal(torch.load(path, weights_only=True), torch.arange(4))
    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_save({"a": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True), torch.arange(4))  # old file intact
    assert leftovers(tmp_path) == []


def test_prepare_save_dir_records_and_checks(tmp_path):
    d = tmp_path / "w"
    prepare_save_dir(d, {"n_paths": 4, "J": 3})
    assert read_meta(d) == {"n_paths": 4, "J": 3}
    prepare_save_dir(d, {"J": 3, "n_paths": 4})  # same config: fine
    with pytest.raises(ValueError, match="J: directory has 3, this run has 4"):
        prepare_save_dir(d, {"n_paths": 4, "J": 4})
    with pytest.raises(ValueError, match="extra"):
        prepare_save_dir(d, {"n_paths": 4, "J": 3, "extra": 1})
    with pytest.raises(TypeError, match="JSON"):
        prepare_save_dir(tmp_path / "v", {"t": torch.ones(1)})
    assert leftovers(d) == []


def test_dir_with_foreign_vals_is_refused(tmp_path):
    torch.save(torch.ones(1, 3), tmp_path / "vals_0.pt")  # e.g. written by scrapl-loss 0.1.0
    with pytest.raises(ValueError, match="no meta.json"):
        prepare_save_dir(tmp_path, {"n_paths": 4})


def test_bad_meta_file(tmp_path):
    (tmp_path / META_NAME).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a scrapl warmup meta"):
        read_meta(tmp_path)


def test_run_writes_files_and_resume_skips_done_paths(tmp_path):
    toy = make_toy()
    full = warmup(make_toy(), tmp_path / "fresh")
    d = tmp_path / "w"
    first = warmup(toy, d, end_path_idx=2)
    assert first.computed == [0, 1] and existing_val_paths(d) == [0, 1]
    assert not (d / "probs.pt").exists()  # only written for the complete range
    seen, original = set(), toy.path_loss
    toy.path_loss = lambda x_hat, x, p: seen.add(p) or original(x_hat, x, p)
    second = warmup(toy, d)
    # 0 and 1 loaded, not recomputed (path 0's loss is looked at once, by the engine choice)
    assert second.computed == [2, 3] and seen == {0, 2, 3}
    for p in range(4):
        assert torch.equal(second.vals[p], full.vals[p])
        assert torch.equal(load_vals(d / f"vals_{p}.pt", n_theta=3), full.vals[p])
    assert torch.equal(second.probs, full.probs)
    saved = load_probs_file(d / "probs.pt", n_paths=4)
    assert torch.equal(saved.probs, full.probs)
    assert saved.config["n_paths"] == 4 and saved.config["n_iter"] == 8
    assert saved.config["min_prob_frac"] == 0.0
    assert leftovers(d) == []
    third = warmup(toy, d)  # everything done: nothing computed, same probs
    assert third.computed == [] and torch.equal(third.probs, full.probs)


@pytest.mark.parametrize(
    "change",
    [
        {"n_iter": 9},
        {"agg": "mean"},
        {"engine": "direct"},
        {"seed": 1},
        {"config": {"J": 3}},
        {"data": True},
        {"weights": True},
    ],
)
def test_mismatched_rerun_fails_before_compute(tmp_path, change):
    toy = make_toy()
    warmup(toy, tmp_path, end_path_idx=1)
    change = dict(change)
    if change.pop("data", False):
        toy.batches = [b + 1.0 for b in toy.batches]
    if change.pop("weights", False):
        with torch.no_grad():
            toy.params[0].add_(0.01)
    toy.calls.update(theta_fn=0, path_loss=0)
    with pytest.raises(ValueError, match="different configuration"):
        warmup(toy, tmp_path, **change)
    # no curvature was computed: at most the one forward of the automatic engine choice
    assert toy.calls["path_loss"] <= 1 and toy.calls["theta_fn"] <= 1


def test_interrupted_run_leaves_complete_files_and_resumes(tmp_path):
    toy = make_toy()
    fresh = warmup(make_toy(), tmp_path / "fresh")
    original = toy.path_loss

    def failing(x_hat, x, p):
        if p == 2:
            raise KeyboardInterrupt  # e.g. the job is killed while computing path 2
        return original(x_hat, x, p)

    toy.path_loss = failing
    with pytest.raises(KeyboardInterrupt):
        warmup(toy, tmp_path / "w")
    assert existing_val_paths(tmp_path / "w") == [0, 1] and leftovers(tmp_path / "w") == []
    toy.path_loss = original
    resumed = warmup(toy, tmp_path / "w")
    assert resumed.computed == [2, 3] and torch.equal(resumed.probs, fresh.probs)


def test_corrupt_vals_file_is_an_error(tmp_path):
    toy = make_toy()
    warmup(toy, tmp_path, end_path_idx=2)
    torch.save(torch.ones(2, 3), tmp_path / "vals_1.pt")
    with pytest.raises(ValueError, match="vals_1.pt"):
        warmup(toy, tmp_path)
    (tmp_path / "vals_1.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot load"):
        warmup(toy, tmp_path)


def test_load_warmup_dir_equals_run(tmp_path):
    res = warmup(make_toy(), tmp_path)
    state = ThetaISState(n_paths=4, n_theta=3)
    assert load_warmup_dir(tmp_path, state=state) == [0, 1, 2, 3]
    assert torch.equal(state.probs, res.probs)
    with pytest.raises(ValueError, match="n_theta"):
        load_warmup_dir(tmp_path, state=ThetaISState(n_paths=4, n_theta=2))
    with pytest.raises(ValueError, match="J"):
        load_warmup_dir(tmp_path, state=state, expected_config={"J": 3})
    with pytest.raises(ValueError, match="not a directory"):
        load_warmup_dir(tmp_path / "nope", state=state)


def test_load_warmup_dir_missing_paths(tmp_path, caplog):
    toy = make_toy(n_paths=8)
    partial = warmup(toy, tmp_path, start_path_idx=1, end_path_idx=3)
    state = ThetaISState(n_paths=8, n_theta=3)
    with pytest.raises(ValueError, match=r"6 of 8 paths: 0, 3-7"):
        load_warmup_dir(tmp_path, state=state)
    with caplog.at_level(logging.WARNING):
        assert load_warmup_dir(tmp_path, state=state, allow_missing=True) == [1, 2]
    assert "Warmup vals for path index 0 do not exist, skipping" in caplog.text
    assert torch.equal(state.probs, partial.probs)  # same mixture as the partial run


def test_load_warmup_dir_agg_and_reference_format(tmp_path):
    vals = {p: torch.rand(4, 3, generator=torch.Generator().manual_seed(p)) for p in range(5)}
    for p, v in vals.items():  # a directory as scrapl-loss 0.1.0 writes it: no meta.json
        torch.save(v, tmp_path / f"vals_{p}.pt")
    state = ThetaISState(n_paths=5, n_theta=3)
    load_warmup_dir(tmp_path, state=state, agg="med")
    expected = ThetaISState(n_paths=5, n_theta=3)
    for p, v in vals.items():
        expected.update_path(p, v.median(0).values)
    assert torch.equal(state.probs, expected.probs)
    with pytest.raises(ValueError, match="one row"):
        load_warmup_dir(tmp_path, state=state, agg="none")


def test_probs_file_formats(tmp_path):
    p = torch.full((4,), 0.25, dtype=torch.float64)
    save_probs_file(tmp_path / "a.pt", p, {"J": 3})
    got = load_probs_file(tmp_path / "a.pt", n_paths=4)
    assert torch.equal(got.probs, p) and got.config == {"J": 3}
    torch.save(p.float(), tmp_path / "b.pt")  # scrapl-loss 0.1.0: a plain tensor
    got = load_probs_file(tmp_path / "b.pt", n_paths=4)
    assert got.config is None and got.probs.dtype == torch.float64
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        load_probs_file(tmp_path / "a.pt", n_paths=5)
    with pytest.raises(ValueError, match="does not exist"):
        load_probs_file(tmp_path / "c.pt", n_paths=4)


def test_a_directory_written_before_this_format_resumes_and_loads(tmp_path):
    """tests/data/warmup_v1: the toy's warmup as the previous version wrote it (probs.pt a dict,
    meta.json without the probs record). It loads, and a re-run resumes it (nothing recomputed),
    then writes probs.pt in the plain format."""
    import shutil
    from pathlib import Path

    old = Path(__file__).parent / "data" / "warmup_v1"
    d = tmp_path / "w"
    shutil.copytree(old, d)
    before = load_probs_file(d / "probs.pt", n_paths=4)
    assert isinstance(torch.load(old / "probs.pt", weights_only=True), dict) and before.config["n_iter"] == 8
    state = ThetaISState(n_paths=4, n_theta=3)
    assert load_warmup_dir(d, state=state) == [0, 1, 2, 3]
    torch.testing.assert_close(state.probs, before.probs, rtol=0, atol=1e-15)
    resumed = warmup(make_toy(), d)
    assert resumed.computed == []
    torch.testing.assert_close(resumed.probs, before.probs, rtol=0, atol=1e-15)
    rewritten = torch.load(d / "probs.pt", weights_only=True)
    assert isinstance(rewritten, torch.Tensor) and torch.equal(rewritten, resumed.probs)
    assert load_probs_file(d / "probs.pt", n_paths=4).config == resumed.config
