"""What a path needs is built once, in one place (:class:`scrapl.jtfs.plan.JTFSPlan`), and
registered: every constant follows ``.to()``, nothing goes into ``state_dict``, float64 keeps
exact operators, and the modules of the engine do not import each other in a cycle.
Also the first-order cluster layout's invariants (every band inside its row's window)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from scrapl import TimeFrequencyScattering
from scrapl.jtfs import bands, plan

E = dict(shape=4096, J=6, Q1=2, Q2=1, J_fr=2, Q_fr=1)
CONFIGS = {
    "E": E,
    "wide": dict(shape=256, J=3, Q1=1, Q2=1, J_fr=1, Q_fr=1),
    "paper": dict(shape=32768, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2, T=4096, F=8),
}


def test_nothing_persistent_and_no_apply_override():
    jtfs = TimeFrequencyScattering(**E)
    assert jtfs.state_dict() == {}
    assert len(list(jtfs.buffers())) > 0
    for module in jtfs.modules():
        assert type(module)._apply is nn.Module._apply, type(module).__name__


def test_every_tensor_a_path_uses_follows_to():
    """On the ``meta`` device (no storage), a path and its gradient only work if every constant
    the computation touches moved with ``.to()``."""
    jtfs = TimeFrequencyScattering(**E).to("meta")
    x = torch.randn(2, E["shape"], device="meta", requires_grad=True)
    for k in (0, jtfs.n_paths - 1):
        S = jtfs.path(x, k)
        assert S.device.type == "meta" and S.shape == (2, *jtfs.path_shape(k))
        (g,) = torch.autograd.grad(S.sum(), x)
        assert g.device.type == "meta"


def test_to_float64_is_double_and_keeps_exact_operators():
    """``.to(torch.float64)`` is ``.double()``; in float64 the frequential operator is the float64
    one (it keeps more rows than the float32 one, and digits float32 cannot hold), not the float32
    buffer upcast."""
    a = TimeFrequencyScattering(**E).to(torch.float64)
    b = TimeFrequencyScattering(**E).double()
    fa, fb = a.plan.frequential_plan(a.paths[5]), b.plan.frequential_plan(b.paths[5])
    H64 = fa.constant("H", torch.float64)
    assert H64.dtype == torch.float64 and torch.equal(H64, fb.constant("H", torch.float64))
    assert fa.rows(torch.float32) < fa.rows(torch.float64) == H64.shape[0] // 2
    assert (H64.float().double() != H64).any()  # not float32 numbers upcast
    x = torch.randn(1, E["shape"], dtype=torch.float64)
    assert torch.equal(a.path(x, 5), b.path(x, 5))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names |= {f"{'.' * node.level}{node.module or ''}"}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_engine_modules_import_in_one_direction():
    """Only ``transform.py`` (the module) imports the stages; no stage imports the module."""
    root = Path(plan.__file__).parent
    for name in ("full", "plan", "scalogram", "core", "bands", "constants", "ops", "filterbank", "config"):
        assert ".transform" not in _imports(root / f"{name}.py"), name


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_band_lies_in_its_rows_window(name):
    jtfs = TimeFrequencyScattering(**CONFIGS[name])
    psi1 = jtfs.bank.psi1_f[: jtfs.n1_limit].astype(np.float32).astype(np.float64)
    Np = jtfs.config.Np
    start, width = bands.band_hulls(psi1)
    start = bands.signed(start, Np)
    rows = []
    for c in jtfs.plan.first_order.layout:
        assert list(c.n1) == sorted(c.n1, reverse=True)
        usable = c.length // 2 if c.one_sided else c.window
        for r, n1 in enumerate(c.n1):
            first = c.a0 + r * c.d
            assert first <= start[n1] and start[n1] + width[n1] <= first + usable, (name, n1)
            assert c.alpha(r, Np) >= 0 and (c.one_sided or c.alpha(r, Np) == 0)
        rows += c.n1
    assert sorted(rows) == list(range(jtfs.n1_limit))


def test_coarse_groups_share_one_cluster():
    """In the paper configuration the decimation groups of length <= 1024 are one cluster,
    and the others one cluster each: 7 FFT lengths for 12 groups."""
    jtfs = TimeFrequencyScattering(**CONFIGS["paper"])
    layout = jtfs.plan.first_order.layout
    lengths = [c.length for c in layout]
    assert lengths == [65536 >> k for k in range(6)] + [plan.merge_length(65536)] == [*lengths[:6], 1024]
    assert set(layout[-1].k1) == set(range(6, 12)) and all(c.one_sided for c in layout)
