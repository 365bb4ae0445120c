"""The ``scrapl`` console script: ``paths`` (table, CSV, errors), ``bench`` (forwarding, missing
runner), ``demo`` (argument errors; the run itself is covered by test_demo_pipeline.py)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from scrapl import cli
from scrapl.demo.config import preset
from scrapl.jtfs.config import JTFSConfig
from scrapl.jtfs.filterbank import FilterBank

SMALL = ["--shape", "4096", "--J", "6", "--Q1", "2", "--Q2", "1", "--J-fr", "2", "--Q-fr", "1"]


def _paths(shape=4096, J=6, Q1=2, Q2=1, J_fr=2, Q_fr=1, T=None, F=None):
    return FilterBank(JTFSConfig(shape, J, Q1, Q2, J_fr, Q_fr, T, F)).paths


@pytest.mark.parametrize("sr", [8192.0, 44100.0])
def test_paths_csv_lists_every_path_with_its_metadata(capsys, sr):
    assert cli.main(["paths", *SMALL, "--sr", str(sr), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    paths = _paths()
    assert len(rows) == len(paths)
    for row, p in zip(rows, paths, strict=True):
        assert (int(row["index"]), int(row["n2"]), int(row["n_fr"])) == (p.idx, p.n2, p.n_fr)
        assert (int(row["j2"]), int(row["j_fr"]), int(row["spin"])) == (p.j2, p.j_fr, p.spin)
        assert float(row["rate_hz"]) == pytest.approx(p.xi2 * sr, rel=1e-5)
        assert float(row["scale_cycles_per_octave"]) == pytest.approx(p.xi_fr * p.Q1, rel=1e-5, abs=1e-9)


def test_paths_table_has_one_line_per_path(capsys):
    assert cli.main(["paths", *SMALL]) == 0
    lines = capsys.readouterr().out.splitlines()
    n = len(_paths())
    assert lines[0].endswith(f"{n} paths")
    assert len(lines) == 3 + n  # title, header, rule, one line per path
    assert lines[3].split()[:2] == ["0", f"({_paths()[0].n2},{_paths()[0].n_fr})"]


def test_paths_demo_uses_the_demo_configuration(capsys):
    from scrapl.demo.config import DemoConfig

    d = DemoConfig()
    assert cli.main(["paths", "--demo", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(_paths(d.n_samples, d.J, d.Q1, d.Q2, d.J_fr, d.Q_fr, d.T))


@pytest.mark.parametrize(
    "args,message",
    [
        (["paths", "--J", "20"], "J must satisfy 2**J <= shape"),
        (["paths", *SMALL, "--T", "wide"], "must be 'none', 'global' or an int"),
        (["paths", "--shape", "0"], "must be a positive int"),
        (["paths", *SMALL, "--sr", "-1"], "--sr: must be > 0"),
        (["demo", "--runs", "scrapl_theta_is,bogus"], "runs must be a non-empty subset"),
        (["demo", "--device", "not-a-device"], "--device"),
        (["demo", "--steps", "0"], "must be a positive int"),
        (["demo", "--draw-seed", "x"], "invalid int value"),
        (["demo", "--warmup-on", "weights"], "invalid choice: 'weights'"),
        (["demo", "--warmup-batch", "0"], "warmup_batch must be a positive int"),
        (["demo", "--warmup-init", "reference"], "invalid choice: 'reference'"),
        (["demo", "--warmup-method", "lanczos"], "invalid choice: 'lanczos'"),
        (["demo", "--min-prob-frac", "1"], "min_prob_frac must be in [0, 1)"),
        (["demo", "--min-prob-frac", "x"], "invalid float value"),
        (["demo", "--quick", "--paper"], "not allowed with argument"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bench_without_a_source_checkout_explains(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "BENCH_RUNNER", tmp_path / "benchmarks" / "run.py")
    assert cli.main(["bench", "--quick"]) == 2
    assert "scrapl bench: error: needs a source checkout" in capsys.readouterr().err


@pytest.mark.parametrize("argv,code", [([], 0), (["--quick", "--sections", "steps"], 3)])
def test_bench_forwards_its_arguments_to_the_runner(monkeypatch, tmp_path, capsys, argv, code):
    runner = tmp_path / "run.py"
    runner.write_text("def main(argv):\n    print('ARGV', argv)\n    return len(argv)\n")
    monkeypatch.setattr(cli, "BENCH_RUNNER", runner)
    assert cli.main(["bench", *argv]) == code
    assert capsys.readouterr().out.strip() == f"ARGV {argv}"


def test_bench_runner_path_points_into_the_checkout():
    assert cli.BENCH_RUNNER.parts[-2:] == ("benchmarks", "run.py")
    assert (cli.BENCH_RUNNER.parents[1] / "src" / "scrapl" / "cli.py").is_file()


@pytest.mark.parametrize("args", [["-m", "scrapl", "--help"], ["-m", "scrapl", "demo", "--help"]])
def test_python_dash_m_scrapl_runs_the_cli(args):
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert "usage: scrapl" in out.stdout


def test_demo_warmup_flags_reach_the_configuration(monkeypatch):
    import scrapl.demo.run as demo_run

    seen = {}

    class Stop(Exception):
        pass

    def fake_run_demo(cfg, out_dir, **kwargs):
        seen["cfg"] = cfg
        raise Stop

    monkeypatch.setattr(demo_run, "run_demo", fake_run_demo)
    args = ["demo", "--warmup-on", "theta", "--warmup-batch", "12", "--warmup-init", "seeded"]
    with pytest.raises(Stop):
        cli.main([*args, "--warmup-method", "arnoldi", "--no-progress"])
    cfg = seen["cfg"]
    assert (cfg.warmup_on, cfg.warmup_batch, cfg.warmup_init) == ("theta", 12, "seeded")
    assert cfg.warmup_method == "arnoldi"
    assert cfg.min_prob_frac == preset("default").min_prob_frac
    with pytest.raises(Stop):
        cli.main(["demo", "--warmup-init", "chain", "--min-prob-frac", "0.25", "--no-progress"])
    assert (seen["cfg"].warmup_init, seen["cfg"].min_prob_frac) == ("chain", 0.25)
