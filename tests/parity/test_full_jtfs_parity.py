"""The full JTFS (first-order and second-order paths) against the reference's vendored kymatio
``TimeFrequencyScattering`` (format='joint'); see docs/dev/full-jtfs.md."""

from __future__ import annotations

import pytest
import torch

from scrapl import TimeFrequencyScattering

from .ref_full_jtfs import reference_full_jtfs

CASES = [
    (8096, 3, 1, 1, 2, 1, None, None),
    (4096, 6, 2, 1, 2, 1, None, None),
    (4096, 6, 2, 1, 2, 1, 16, 2),
    (4096, 6, 2, 1, 2, 1, 100, 3),
    (1000, 5, 3, 2, 3, 3, None, None),
]


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("unpad", [True, False])
def test_full_transform_matches_reference(scrapl_ref, cfg, unpad):
    x = torch.randn(2, cfg[0], generator=torch.Generator().manual_seed(1))
    ref = reference_full_jtfs(*cfg, x=x, unpad=unpad)
    ours = TimeFrequencyScattering(*cfg)
    assert [e["n"] for e in ref] == [p.key for p in ours.full_paths]
    assert [e["order"] for e in ref] == [p.order for p in ours.full_paths]
    expected = torch.stack([e["coef"] for e in ref], dim=1)
    got = ours.full(x, unpad=unpad)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-6 * expected.abs().max().item())


def test_full_transform_float64(scrapl_ref):
    cfg = CASES[1]
    x = torch.randn(1, cfg[0], dtype=torch.float64)
    ref = reference_full_jtfs(*cfg, x=x)
    expected = torch.stack([e["coef"] for e in ref], dim=1)
    got = TimeFrequencyScattering(*cfg).double().full(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12 * expected.abs().max().item())
