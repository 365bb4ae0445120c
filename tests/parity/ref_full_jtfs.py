"""Test-side access to the reference's *full* joint time-frequency scattering (JTFS).

The reference package scrapl-loss 0.1.0 only ever evaluates one second-order path at a time, but it
ships a fork of kymatio whose ``TimeFrequencyScatteringTorch`` computes every path. This module
builds that object with exactly the hyperparameters that ``SCRAPLLoss`` gives its single-path
object (see ``docs/dev/full-jtfs.md``) and turns its output into a list of plain dictionaries, one
per path and in output order, that our own implementation can be compared with entry by entry.

The oracle is imported as ``scrapl_ref`` from ``.cache/reference`` (``tools/fetch_reference.py``);
importing it also puts its vendored kymatio fork on ``sys.path`` as the top-level ``kymatio``.
Nothing here is used by the library itself.

Main entry points
-----------------
``reference_full_jtfs(N, J, Q1, Q2, J_fr, Q_fr, T=None, F=None, x=...)``
    every output group of the full transform, as a list of dicts (see its docstring).
``reference_single_path(N, J, Q1, Q2, J_fr, Q_fr, T=None, F=None, x=..., n2=..., n_fr=...)``
    the coefficients that ``SCRAPLLoss`` uses for one path, shaped ``(B, n_freq, n_time)``.
``reference_full_module`` / ``reference_single_path_module``
    the cached reference modules themselves.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]

TLike = int | float | str | None


def _import_reference():
    """Import the oracle ``scrapl_ref`` (fetching it if needed, like ``tests/conftest.py``)."""
    try:
        return importlib.import_module("scrapl_ref")
    except ImportError:
        pass
    tools = str(ROOT / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    from fetch_reference import fetch

    ref_dir = str(fetch())
    if ref_dir not in sys.path:
        sys.path.append(ref_dir)
    module = importlib.import_module("scrapl_ref")
    logging.getLogger("scrapl_ref").setLevel(logging.WARNING)
    return module


def _kwargs(N, J, Q1, Q2, J_fr, Q_fr, T, F) -> dict:
    # The very keyword set that SCRAPLLoss.__init__ hands to its single-path object. Everything else
    # (stride=None, stride_fr=None, oversampling=None, oversampling_fr=0, max_order=2, 'torch'
    # backend) is a default of the fork's constructors, identical for both classes.
    return dict(shape=(int(N),), J=J, Q=(Q1, Q2), Q_fr=Q_fr, J_fr=J_fr, T=T, F=F)


@functools.lru_cache(maxsize=16)
def reference_full_module(
    N, J, Q1, Q2, J_fr, Q_fr, T: TLike = None, F: TLike = None, dtype: torch.dtype = torch.float32
):
    """The fork's full ``TimeFrequencyScatteringTorch``, ``format='joint'``, ``out_type='array'``.

    Those two options are what the single-path object forces; ``format`` must be given explicitly
    because the full class defaults to ``format='time'``. For ``dtype=torch.float64`` the module is
    ``.double()``-ed, which upcasts the float32-rounded filters (as ``SCRAPLLoss.double()`` does).
    """
    _import_reference()
    from kymatio.scattering1d.frontend.torch_frontend import TimeFrequencyScatteringTorch

    module = TimeFrequencyScatteringTorch(
        format="joint", out_type="array", **_kwargs(N, J, Q1, Q2, J_fr, Q_fr, T, F)
    )
    if dtype == torch.float64:
        module = module.double()
    elif dtype != torch.float32:
        raise TypeError(f"unsupported dtype {dtype}")
    return module


@functools.lru_cache(maxsize=16)
def reference_single_path_module(
    N, J, Q1, Q2, J_fr, Q_fr, T: TLike = None, F: TLike = None, dtype: torch.dtype = torch.float32
):
    """The single-path JTFS object exactly as ``SCRAPLLoss`` builds it (``loss.jtfs``)."""
    _import_reference()
    from scrapl_ref.single_path_jtfs import TimeFrequencyScrapl

    module = TimeFrequencyScrapl(**_kwargs(N, J, Q1, Q2, J_fr, Q_fr, T, F))
    if dtype == torch.float64:
        module = module.double()
    elif dtype != torch.float32:
        raise TypeError(f"unsupported dtype {dtype}")
    return module


def _as_batch(x: torch.Tensor, N: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError("x must be a torch.Tensor of shape (B, N)")
    if x.ndim != 2 or x.shape[-1] != N:
        raise ValueError(f"x must have shape (B, {N}), got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    return x.contiguous()


def _no_unpad_backend(backend):
    """A subclass of the fork's torch backend whose temporal ``unpad`` keeps every frame.

    The fork's ``unpad(x, i0, i1)`` first drops the trailing singleton axis and then slices
    ``[..., i0:i1]``; this one only drops the axis.
    """

    def unpad(x, i0, i1):
        return x.reshape(x.shape[:-1])

    return type("NoTemporalUnpadBackend", (backend,), {"unpad": staticmethod(unpad)})


def _run(module, x: torch.Tensor, unpad: bool, out_type: str):
    saved_backend, saved_out_type = module.backend, module.out_type
    try:
        if not unpad:
            module.backend = _no_unpad_backend(saved_backend)
        module.out_type = out_type
        return module(x)
    finally:
        module.backend = saved_backend
        module.out_type = saved_out_type


def reference_full_jtfs(
    N: int,
    J: int,
    Q1: int,
    Q2: int,
    J_fr: int,
    Q_fr: int,
    T: TLike = None,
    F: TLike = None,
    x: torch.Tensor | None = None,
    *,
    unpad: bool = True,
    include_zeroth: bool = False,
) -> list[dict[str, Any]]:
    """Run the reference's full JTFS on ``x`` (shape ``(B, N)``) and return its paths as dicts.

    The module is ``reference_full_module(N, J, Q1, Q2, J_fr, Q_fr, T, F, x.dtype)``, the fork's
    ``TimeFrequencyScatteringTorch(shape=(N,), J=J, Q=(Q1, Q2), J_fr=J_fr, Q_fr=Q_fr, T=T, F=F,
    format='joint', out_type='array')``. Its output, a tensor ``(B, P, n_freq, n_time)``, is split
    along ``P``; the metadata comes from the module's own ``meta()``. The list is in output order:
    first-order paths ``n_fr = 0 .. K`` (spin 0 then spin +1), then for each ``n2`` with a non-empty
    second order (ascending) the paths ``n_fr = 0 .. 2K`` (spin 0, +1 .. , -1 ..).

    Parameters
    ----------
    unpad : if True (default) the coefficients are exactly the reference's full output, which is
        cut in time to the frames ``ind_start[log2_T] : ind_end[log2_T]`` covering the unpadded
        signal. If False, the same computation without that final cut: all ``Np / 2**log2_T``
        frames are kept, as in the single-path object used by SCRAPLLoss (second-order entries are
        then bit-identical to ``reference_single_path``).
    include_zeroth : also return the zeroth-order coefficient ``S0 = x * phi_T`` as the first
        entry. The reference's ``format='joint', out_type='array'`` output drops it; it is taken
        here from a second run with ``out_type='list'`` (temporal unpadding as per ``unpad``).

    Returns
    -------
    A list of dicts, one per path, with the fields

    ``'order'`` : int
        0 (only with ``include_zeroth``), 1 (``S1`` filtered along n1: no second temporal wavelet)
        or 2 (``U1 * psi2[n2]`` then filtered along n1).
    ``'n'`` : tuple
        the reference's key: ``()`` at order 0, ``(n_fr,)`` at order 1, ``(n2, n_fr)`` at order 2.
    ``'n2'`` : int or None
        index of the second-order temporal wavelet (order 2 only).
    ``'n_fr'`` : tuple or None
        ``(n_fr,)``, index into the frequential bank
        ``[phi_fr (width 2**J_fr), psi_fr+ ..., psi_fr- ...]``; None at order 0.
    ``'spin'`` : int or None
        0 for ``n_fr = 0`` (frequential lowpass), +1 / -1 for the sign of the frequential wavelet's
        centre frequency; None at order 0.
    ``'j2'`` : int or None
        dyadic index of ``psi2[n2]`` (order 2 only).
    ``'j_fr'`` : int or None
        dyadic index of the frequential filter (``J_fr`` for ``n_fr = 0``).
    ``'xi_fr'``, ``'sigma_fr'`` : float or None
        centre frequency and width of the frequential filter.
    ``'n1_max'`` : int or None
        number of first-order rows that enter the n1 axis before zero padding: ``len(psi1)`` at
        order 1, ``#{n1 : j1 < j2}`` at order 2 (rows ``n1 >= N_fr`` are dropped by the reference
        when ``N_fr`` is smaller).
    ``'n1_stride'`` : int or None
        frequential stride of the output along n1: ``2**log2_F`` for spin +-1 (averaged with phi_F),
        ``2**J_fr`` for spin 0 (this is the reference's metadata value; with local F the actual
        stride of the spin-0 output is ``2**min(J_fr, log2_F)``, see the spec).
    ``'coef'`` : Tensor of shape ``(B, n_freq, n_time)``, same dtype as ``x``
        the coefficients. ``n_freq`` indexes the (strided) n1 axis including the zero-padded rows,
        ``n_time`` the time frames. At order 0 the shape is ``(B, 1, n_time)``.

    Raises whatever the reference raises: in particular it cannot run with ``T='global'`` or
    ``F='global'``, nor when some second-order filter has ``j2 > log2_T`` (``docs/dev/full-jtfs.md``
    section 8).
    """
    if x is None:
        raise TypeError("reference_full_jtfs() needs the input signal x")
    x = _as_batch(x, N)
    module = reference_full_module(N, J, Q1, Q2, J_fr, Q_fr, T, F, x.dtype)

    S = _run(module, x, unpad, "array")  # (B, P, n_freq, n_time)
    meta = module.meta()
    keys = list(meta["key"])
    if len(keys) != len(meta["order"]):  # joint/array drops the zeroth order from all but 'key'
        keys = keys[1:]
    if S.ndim != 4 or S.shape[1] != len(keys):
        raise RuntimeError(f"unexpected reference output {tuple(S.shape)} for {len(keys)} keys")

    out: list[dict[str, Any]] = []
    if include_zeroth:
        paths = _run(module, x, unpad, "list")
        p0 = paths[0]
        assert p0["n"] == () and p0["order"] == 0
        out.append(
            dict(
                order=0,
                n=(),
                n2=None,
                n_fr=None,
                spin=None,
                j2=None,
                j_fr=None,
                xi_fr=None,
                sigma_fr=None,
                n1_max=None,
                n1_stride=None,
                coef=p0["coef"].unsqueeze(1),
            )
        )

    for i, key in enumerate(keys):
        order = int(meta["order"][i])
        n1_range = meta["n"][i][0]
        n_fr = int(meta["n_fr"][i])
        assert key[-1] == n_fr and len(key) == order
        out.append(
            dict(
                order=order,
                n=tuple(int(k) for k in key),
                n2=int(key[0]) if order == 2 else None,
                n_fr=(n_fr,),
                spin=int(meta["spin"][i]),
                j2=int(meta["j"][i][1]) if order == 2 else None,
                j_fr=int(meta["j_fr"][i]),
                xi_fr=float(meta["xi_fr"][i]),
                sigma_fr=float(meta["sigma_fr"][i]),
                n1_max=int(n1_range.stop),
                n1_stride=int(n1_range.step),
                coef=S[:, i],
            )
        )
    return out


def reference_single_path(
    N: int,
    J: int,
    Q1: int,
    Q2: int,
    J_fr: int,
    Q_fr: int,
    T: TLike = None,
    F: TLike = None,
    x: torch.Tensor | None = None,
    *,
    n2: int,
    n_fr: int,
) -> torch.Tensor:
    """The reference's single-path coefficients of path ``(n2, n_fr)``, ``(B, n_freq, n_time)``.

    This is what ``SCRAPLLoss`` computes per path: ``loss.jtfs.scattering_singlepath(x, n2, n_fr)``
    with the ``(B*C, 1, n_freq, n_time, 1)`` result reduced to ``(B, n_freq, n_time)`` (no temporal
    unpadding).
    """
    if x is None:
        raise TypeError("reference_single_path() needs the input signal x")
    x = _as_batch(x, N)
    module = reference_single_path_module(N, J, Q1, Q2, J_fr, Q_fr, T, F, x.dtype)
    coef = module.scattering_singlepath(x.unsqueeze(1), n2, n_fr)["coef"]
    return coef.reshape(coef.shape[0], coef.shape[2], coef.shape[3])


def reference_scrapl_keys(
    N: int, J: int, Q1: int, Q2: int, J_fr: int, Q_fr: int, T: TLike = None, F: TLike = None
) -> list[tuple[int, int]]:
    """``SCRAPLLoss.scrapl_keys``: the two-element keys of the single-path object's metadata."""
    module = reference_single_path_module(N, J, Q1, Q2, J_fr, Q_fr, T, F, torch.float32)
    return [tuple(int(k) for k in key) for key in module.meta()["key"] if len(key) == 2]


__all__ = [
    "reference_full_jtfs",
    "reference_single_path",
    "reference_full_module",
    "reference_single_path_module",
    "reference_scrapl_keys",
]
