"""Smoke test of the benchmark suite: ``benchmarks/run.py --quick`` runs, writes its table, JSON and
plot, and every correctness column of the side-by-side comparison is within tolerance.

Timings are never asserted (the quick sizes are too small to mean anything, and CI machines are
shared); only that they were measured.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _load_runner():
    """Load ``benchmarks/run.py`` by file path, as ``scrapl bench`` does."""
    spec = importlib.util.spec_from_file_location("scrapl_bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, scrapl_ref):
    """One ``--quick`` run (one thread, restored afterwards: steadier on a shared CI machine)."""
    out = tmp_path_factory.mktemp("bench")
    paths = {"md": out / "RESULTS.md", "json": out / "results.json", "png": out / "sweep.png"}
    threads = torch.get_num_threads()
    try:
        status = _load_runner().main(
            [
                "--quick",
                "--threads",
                "1",
                "--out",
                str(paths["md"]),
                "--json",
                str(paths["json"]),
                "--plot",
                str(paths["png"]),
            ]
        )
    finally:
        torch.set_num_threads(threads)
    return status, paths, json.loads(paths["json"].read_text())


def _step_rows(results):
    return [row for section in ("steps", "sweep") for res in results[section] for row in res["rows"]]


def test_exit_status_is_zero(quick_run):
    assert quick_run[0] == 0


@pytest.mark.parametrize(
    "heading",
    [
        "## Machine and software",
        "## One training step per path",
        "## Step time against signal length",
        "## Full JTFS",
        "## P-Adam + P-SAGA overhead per step",
        "## θ-IS warmup",
        "with `SCRAPLLoss(..., low_memory=True)`",
    ],
)
def test_markdown_has_section(quick_run, heading):
    assert heading in quick_run[1]["md"].read_text()


def test_markdown_states_machine_and_versions(quick_run):
    text = quick_run[1]["md"].read_text()
    for needle in ("| CPU |", "| torch intra-op threads |", "torch ", "auraloss ", "| date |"):
        assert needle in text


def test_plot_is_a_png(quick_run):
    assert quick_run[1]["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("column, tol", [("loss_err", 1e-4), ("grad_err", 1e-3)])
def test_step_rows_match_reference(quick_run, column, tol):
    rows = _step_rows(quick_run[2])
    assert len(rows) >= 4
    assert max(row[column] for row in rows) <= tol


@pytest.mark.parametrize("column", ["ours_ms", "ref_ms", "mss_ms", "floor_ms"])
def test_step_times_are_measured(quick_run, column):
    assert all(math.isfinite(row[column]) and row[column] > 0 for row in _step_rows(quick_run[2]))


def test_step_rows_count_operators_and_host_synchronisations(quick_run):
    """Every step row counts the aten operators of ours, the reference and MSS; ours has no host
    synchronisation, on the timed paths and on all paths of the configuration."""
    for res in quick_run[2]["steps"]:
        for row in res["rows"]:
            assert row["ops_ours"] > 0 and row["ops_ref"] > 0 and row["ops_mss"] > 0
            assert row["syncs_ours"] == 0
        every = res["all_paths_ops"]
        assert every["n_paths"] == 21  # the quick configuration
        assert every["syncs"] == 0 and 0 < every["min"] <= every["max"] <= every["mss"]
    assert "aten ops: ours / ref / MSS" in quick_run[1]["md"].read_text()


@pytest.mark.parametrize("column, tol", [("coef_err", 1e-5), ("grad_err", 1e-3)])
def test_full_transform_matches_kymatio(quick_run, column, tol):
    assert quick_run[2]["full"][0][column] <= tol


def test_optimizer_hooks_match_reference(quick_run):
    assert quick_run[2]["optim"]["max_rel_err"] <= 1e-5


@pytest.mark.parametrize("method", ["ours_factored", "ours_direct"])
def test_warmup_values_match_reference(quick_run, method):
    assert quick_run[2]["warmup"][0]["max_rel_diff"][method] <= 1e-4


@pytest.mark.parametrize("column", ["ours_peak", "ref_peak"])
def test_step_peak_memory_is_measured(quick_run, column):
    rows = [row for res in quick_run[2]["steps"] for row in res["rows"]]
    assert all(row[column]["tensors"] > 0 for row in rows)


def test_profile_step_reports_stages_fft_floor_and_kernel_time(capsys):
    """``python -m benchmarks.profile_step`` prints every stage of a step, the FFT floor, the
    kernel time of ours and of MSS (values not asserted: they are timings)."""
    from benchmarks import profile_step

    threads = torch.get_num_threads()
    try:
        profile_step.main(
            ["--config", "quick", "--paths", "0", "--repeats", "2", "--ops", "3", "--fft-floor", "--kernel"]
        )
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    for stage in ("x: first order", "target: first order", "backward", "distance"):
        assert stage in out
    assert "first-order FFTs alone" in out
    assert "kernel:" in out and "minor faults" in out
    assert "auraloss MSS step: kernel" in out
    assert "Self CPU time total" in out  # the operator table
