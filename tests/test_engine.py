"""Every path engine satisfies :class:`scrapl.engine.PathEngine`: the members SCRAPL uses, and what
they promise (``paths[k].key`` identifies path ``k``, ``all_paths(x)[k] == path(x, k)``, plain-data
``describe()``)."""

from __future__ import annotations

import json

import pytest
import torch

from scrapl import PathEngine, SCRAPLLoss, TimeFrequencyScattering

SMALL = dict(shape=2048, J=5, Q1=2, Q2=1, J_fr=2, Q_fr=1)
ENGINES = {
    "jtfs": lambda: TimeFrequencyScattering(**SMALL),
    "jtfs low-memory": lambda: TimeFrequencyScattering(**SMALL, low_memory=True),
    "jtfs float64": lambda: TimeFrequencyScattering(**SMALL).double(),
    "SCRAPLLoss's engine": lambda: SCRAPLLoss(**SMALL).engine,
}


@pytest.fixture(scope="module", params=list(ENGINES))
def engine(request) -> PathEngine:
    return ENGINES[request.param]()


def test_is_a_path_engine(engine):
    assert isinstance(engine, PathEngine)
    typed: PathEngine = engine  # mypy checks the structural type where engines are assigned
    assert typed.n_paths == len(typed.paths) > 0


def test_paths_are_identified_by_distinct_hashable_keys(engine):
    keys = [p.key for p in engine.paths]
    assert len(set(keys)) == len(keys) == engine.n_paths


def test_path_and_all_paths_agree(engine):
    x = torch.randn(2, engine.signal_length, dtype=getattr(engine, "compute_dtype", torch.float32))
    every = engine.all_paths(x)
    assert len(every) == engine.n_paths
    for k in (0, engine.n_paths // 2, engine.n_paths - 1):
        one = engine.path(x, k)
        assert one.shape[0] == 2
        torch.testing.assert_close(every[k], one, rtol=1e-5, atol=1e-9)
    subset = engine.all_paths(x, [engine.n_paths - 1, 0])
    torch.testing.assert_close(subset[1], every[0], rtol=1e-5, atol=1e-9)


def test_describe_is_plain_data(engine):
    description = engine.describe()
    assert json.loads(json.dumps(description)) == description
    assert description["shape"] == engine.signal_length
