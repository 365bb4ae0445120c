"""``TimeFrequencyScattering``: the JTFS path engine (one path, many paths, or the full transform).

The module validates its configuration, builds the filters once (float64 design, float32 buffers
that follow ``.to()`` / ``.double()``), and delegates the math to :mod:`scrapl.jtfs.core`. What is
derived from the filters (the band windows of the temporal wavelets, :mod:`scrapl.jtfs.window`; the
dense frequential filters with decimation and the temporal and frequential averagings) is built
lazily from the buffers on first use, per device and dtype, and cached.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .. import filters
from .._checks import as_bool
from . import core
from .config import AveragingArg, JTFSConfig
from .filterbank import FilterBank, JTFSPath
from .full import full_paths, full_transform
from .ops import circulant_decimation_matrix, reflect_pad, rfft
from .window import DIRECT_MIN_BINS, Window, band_hull, full_spectrum, make_window

__all__ = ["TimeFrequencyScattering"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)

# (k1, U1, DFT(U1)) for a group of first-order filters sharing the decimation k1
FirstOrder = list[tuple[int, Tensor, Tensor]]


class TimeFrequencyScattering(nn.Module):
    """Joint time-frequency scattering, one second-order path at a time, many, or all of it.

    This reproduces the JTFS of scrapl-loss 0.1.0 (``jtfs-spec.md``): its second-order paths
    ``(n2, n_fr)`` in the order of its ``scrapl_keys`` (:meth:`path`, :meth:`all_paths`), and the
    full transform of its vendored kymatio (:meth:`full`, first-order paths included).

    Args:
        shape: signal length ``N`` in samples.
        J: octaves of the temporal wavelets (first and second order).
        Q1: first-order wavelets per octave.
        Q2: second-order wavelets per octave.
        J_fr: octaves of the frequential wavelets.
        Q_fr: frequential wavelets per octave.
        T: temporal averaging: ``None`` (``2**J`` samples), an int, or ``'global'``.
        F: frequential averaging: ``None`` (``2**J_fr`` bins), an int, or ``'global'``
            (see :class:`~scrapl.jtfs.config.JTFSConfig`).
        low_memory: compute :meth:`path` in chunks of at most :attr:`chunk_elems` samples per
            real plane (first-order filters, then frequential rows; the frequential stage of
            :meth:`all_paths` and :meth:`full` too), keeping only each chunk's
            small output and recomputing the chunk in the backward (activation checkpointing):
            the same values and gradients (to float rounding), a fraction of the peak memory, at
            the price of one more forward pass of the first order in the backward.

    Shape:
        ``path(x, k)``: ``x`` of shape ``(B, N)`` -> ``(B, n_freq, n_time)``, the same for every path
        (``n_freq = N_fr / 2**log2_F``; ``n_time = Np / 2**log2_T``; 1 for a global average).

    Example:
        >>> jtfs = TimeFrequencyScattering(shape=4096, J=6, Q1=2, Q2=1, J_fr=2, Q_fr=1)
        >>> jtfs.n_paths, tuple(jtfs.path(torch.randn(2, 4096), 0).shape)
        (28, (2, 11, 128))
    """

    psi1_f: Tensor  # (n1, Np) first-order filters (a buffer)
    psi_fr_f: Tensor  # (n_fr, N_fr) frequential filters (a buffer)

    def __init__(
        self,
        shape: int,
        J: int,
        Q1: int,
        Q2: int,
        J_fr: int,
        Q_fr: int,
        T: AveragingArg = None,
        F: AveragingArg = None,
        low_memory: bool = False,
    ) -> None:
        super().__init__()
        self.low_memory = as_bool("low_memory", low_memory)
        self.chunk_elems = 2**18  # samples per real plane of one chunk in low-memory mode (1 MiB)
        self.config = c = JTFSConfig(shape, J, Q1, Q2, J_fr, Q_fr, T, F)
        self.bank = bank = FilterBank(c)
        self.paths: list[JTFSPath] = bank.paths
        self.n1_limit = min(len(bank.psi1), c.N_fr)
        if max((p.n1_max for p in self.paths), default=0) > c.N_fr:
            warnings.warn(
                f"F={c.F!r} with J_fr={c.J_fr} gives only N_fr={c.N_fr} frequential bins, fewer than "
                f"the first-order filters feeding some paths; as in scrapl-loss 0.1.0, filters "
                f"n1 >= {c.N_fr} are dropped from those paths",
                stacklevel=2,
            )
        self._k1_groups = self._group_first_order()
        self._register_filters()
        self._operators: dict[tuple, Any] = {}

    # -- construction ------------------------------------------------------------------------------
    def _k1(self, j1: int) -> int:
        """First-order decimation: ``min(j1, log2_T)`` (``j1`` with ``T='global'``)."""
        return j1 if self.config.global_T else min(j1, self.config.log2_T)

    def _k_fr(self, j_fr: int) -> int:
        """Frequential decimation: ``min(j_fr, log2_F)`` (``j_fr`` with ``F='global'``)."""
        return j_fr if self.config.global_F else min(j_fr, self.config.log2_F)

    def _group_first_order(self) -> list[tuple[int, int, int]]:
        """``(k1, start, stop)``: contiguous first-order filter ranges sharing a decimation ``k1``."""
        groups: list[tuple[int, int, int]] = []
        for n1, w in enumerate(self.bank.psi1[: self.n1_limit]):
            k1 = self._k1(w.j)
            if groups and groups[-1][0] == k1:
                groups[-1] = (k1, groups[-1][1], n1 + 1)
            else:
                groups.append((k1, n1, n1 + 1))
        return groups

    def _register_filters(self) -> None:
        c, bank = self.config, self.bank

        def register(name: str, array: np.ndarray) -> None:
            self.register_buffer(name, torch.from_numpy(array).to(torch.float32), persistent=False)

        register("psi1_f", bank.psi1_f)
        for level in self.psi2_levels_used():
            register(f"psi2_f_level{level}", filters.fold_sum(bank.psi2_f, level))
        if not c.global_T:
            levels = {p.j2 for p in self.paths} | {k1 for k1, _, _ in self._k1_groups}
            for level in sorted(levels):
                register(f"phi_f_level{level}", filters.fold_sum(bank.phi_f, level))
        register("psi_fr_f", bank.psi_fr_f)
        if not c.global_F:
            for level in sorted({self._k_fr(w.j) for w in bank.psi_fr}):
                register(f"phi_fr_f_level{level}", filters.fold_sum(bank.phi_fr_f, level))

    def psi2_levels_used(self) -> list[int]:
        """Levels ``k1`` at which second-order wavelets are applied (``j1`` of the filters used)."""
        return sorted({self._k1(w.j) for p in self.paths for w in self.bank.psi1[: p.n1_max]})

    def _apply(self, fn, recurse=True):
        self._operators.clear()  # derived operators follow the buffers' new device/dtype lazily
        return super()._apply(fn, recurse)

    # -- metadata ----------------------------------------------------------------------------------
    @property
    def signal_length(self) -> int:
        """Length ``N`` of the input signals."""
        return self.config.N

    @property
    def n_paths(self) -> int:
        """Number of second-order paths (SCRAPL's sampling space)."""
        return len(self.paths)

    @property
    def path_keys(self) -> list[tuple[int, int]]:
        """``(n2, n_fr)`` of every path, in order."""
        return [p.key for p in self.paths]

    def describe(self) -> dict:
        """The hyperparameters as plain data: ``{"engine": "jtfs", "shape": N, "J": ..., "F": ...}``."""
        c = self.config
        return {
            "engine": "jtfs",
            "shape": c.N,
            "J": c.J,
            "Q1": c.Q1,
            "Q2": c.Q2,
            "J_fr": c.J_fr,
            "Q_fr": c.Q_fr,
            "T": c.T,
            "F": c.F,
        }

    def path_shape(self, path_idx: int) -> tuple[int, int]:
        """``(n_freq, n_time)`` of a path; differs between paths only with ``F='global'``."""
        c, p = self.config, self.paths[path_idx]
        if c.global_F:
            return (c.N_fr // 2**p.j_fr if p.spin == 0 else 1), c.n_time
        return c.N_fr // 2**c.log2_F, c.n_time

    # -- derived operators -------------------------------------------------------------------------
    def _buffer(self, name: str) -> Tensor:
        buf = self._buffers[name]
        assert buf is not None  # every registered filter buffer holds a tensor
        return buf

    def frequential_operator(self, n_fr: int, n_in: int, dtype: torch.dtype) -> core.FrequentialOperator:
        """Frequential filter ``n_fr`` with its decimation, as a complex ``(n_rows, n_in)`` operator
        (rows that cannot reach the data dropped); cached per dtype and device."""
        cache_key = ("psi_fr", n_fr, n_in, dtype, self.psi1_f.device)
        op = self._operators.get(cache_key)
        if op is None:
            H = circulant_decimation_matrix(self.psi_fr_f[n_fr], self._k_fr(self.bank.psi_fr[n_fr].j), n_in)
            # float32 results carry ~1e-7 rounding noise anyway; float64 keeps every row that matters
            rel_tol = 1e-14 if dtype == torch.float64 else 1e-7
            op = core.frequential_operator(H, rel_tol)
            op = self._operators[cache_key] = op._replace(H_block=op.H_block.to(dtype))
        return op

    def operator(self, kind: str, key: int, n_in: int, dtype: torch.dtype) -> Tensor:
        """A dense averaging operator derived from the filter buffers (cached per dtype and device).

        ``"phi_t"``: temporal averaging from level ``key``, real ``(n_in, n_time)`` (transposed);
        ``"phi_fr"``: frequential averaging from level ``key``, real ``(n_freq, n_in)``.
        """
        cache_key = (kind, key, n_in, dtype, self.psi1_f.device)
        op = self._operators.get(cache_key)
        if op is not None:
            return op
        c = self.config
        if kind == "phi_t":
            op = circulant_decimation_matrix(self._buffer(f"phi_f_level{key}"), c.log2_T - key, n_in)
            op = op.real.T.contiguous().to(dtype)
        elif kind == "phi_fr":
            filt = self._buffer(f"phi_fr_f_level{key}")
            op = circulant_decimation_matrix(filt, c.log2_F - key, n_in).real.to(dtype)
        else:
            raise ValueError(f"kind must be 'phi_t' or 'phi_fr', got {kind!r}")
        self._operators[cache_key] = op
        return op

    def psi2_windows(self, n2: int, j2: int, levels: tuple[int, ...], dtype: torch.dtype) -> list[Window]:
        """Windows of second-order wavelet ``n2`` at each first-order level in ``levels`` (cached).

        All runs are placed at one common offset in the length ``Np / 2**j2`` output spectrum
        (the least of their own starts, circularly), so the rows of ``Y`` share one phase.
        """
        key = ("psi2_windows", n2, j2, levels, dtype, self.psi1_f.device)
        windows = self._operators.get(key)
        if windows is None:
            n_out = self.config.Np // 2**j2
            filters = [self._buffer(f"psi2_f_level{k1}")[n2].to(dtype) for k1 in levels]
            starts = [band_hull(h[None])[0][0] % n_out for h in filters]
            diff = [(st - starts[0] + n_out // 2) % n_out - n_out // 2 for st in starts]
            shift = (starts[0] + min(diff)) % n_out
            windows = [make_window(h, j2 - k1, shift=shift) for k1, h in zip(levels, filters, strict=True)]
            self._operators[key] = windows
        return windows

    # -- computation stages ------------------------------------------------------------------------
    def padded_spectrum(self, x: Tensor) -> Tensor:
        """Validate ``x`` of shape ``(B, N)``; return the half spectrum (``rfft``) of its
        reflect-padded version, shape ``(B, Np/2 + 1)``.

        Half-precision inputs (and a half-precision module) compute in float32.
        """
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a real floating-point tensor, got dtype {x.dtype}")
        if x.dim() != 2 or x.shape[-1] != self.config.N:
            raise ValueError(f"x must have shape (batch, {self.config.N}), got {tuple(x.shape)}")
        dtype = self.psi1_f.dtype
        if x.dtype in _LOW_PRECISION or dtype in _LOW_PRECISION:
            dtype = torch.float32
        x = x.to(dtype)
        return rfft(reflect_pad(x, self.config.pad_left, self.config.pad_right))

    def _used_groups(self, n1_max: int) -> list[tuple[int, int, int]]:
        """``(k1, start, stop)`` of the first-order groups feeding rows ``n1 < n1_max``."""
        return [(k1, start, min(stop, n1_max)) for k1, start, stop in self._k1_groups if start < n1_max]

    def first_order_groups(
        self, x_rfft: Tensor, n1_max: int, *, spectra: bool = True
    ) -> Iterator[tuple[int, Tensor, Tensor | None]]:
        """Yield ``(k1, U1, rfft(U1))`` group by group for first-order filters ``n1 < n1_max``
        (a generator: a single path consumes each group before the next one is computed);
        ``(k1, U1, None)`` with ``spectra=False``, for one second-order wavelet, which then takes
        the ``rfft`` itself (:func:`~scrapl.jtfs.window.synthesize_real`)."""
        dtype = x_rfft.real.dtype
        groups = self._used_groups(n1_max)
        windows = [(k1, self._psi1_window(k1, start, stop, dtype)) for k1, start, stop in groups]
        wide = [w.bins.shape[-1] for _, w in windows if w.one_sided]
        wide = [S for S in wide if S >= DIRECT_MIN_BINS]
        # the full spectrum is built once for all groups whose runs are read from it as slices
        full = full_spectrum(x_rfft, self.config.Np, max(wide)) if wide else None
        for k1, window in windows:
            U1 = core.first_order(x_rfft, window, full)
            yield k1, U1, (rfft(U1) if spectra else None)

    def _psi1_window(self, k1: int, start: int, stop: int, dtype: torch.dtype) -> Window:
        """Window of first-order filters ``start .. stop - 1`` at decimation ``k1`` (cached)."""
        key = ("psi1_window", start, stop, k1, dtype, self.psi1_f.device)
        window = self._operators.get(key)
        if window is None:
            window = self._operators[key] = make_window(self.psi1_f[start:stop].to(dtype), k1)
        return window

    def first_order(self, x_rfft: Tensor, n1_max: int) -> FirstOrder:
        """``(k1, U1, rfft(U1))`` for first-order filters ``n1 < n1_max``, grouped by decimation."""
        return [(k1, U1, rfft(U1)) for k1, U1, _ in self.first_order_groups(x_rfft, n1_max, spectra=False)]

    def second_order(
        self, U1: Iterable[tuple[int, Tensor, Tensor | None]], n2: int, j2: int, n1_max: int
    ) -> Tensor:
        """``Y[n2]`` on ``U1[n1]``, ``n1 < n1_max``, as stacked planes ``(Re Y; Im Y)``:
        shape ``(B, 2 n1_max, Np/2**j2)``. ``U1`` may be a generator (consumed group by group);
        a group's ``rfft(U1)`` is used when given, else taken from ``U1``."""
        groups = self._used_groups(n1_max)
        levels = tuple(k1 for k1, _, _ in groups)
        parts: list[Tensor] = []
        for (_, start, stop), (_, U1_k, U1_rfft) in zip(groups, U1, strict=False):
            rows = U1_k if U1_rfft is None else U1_rfft
            windows = self.psi2_windows(n2, j2, levels, U1_k.dtype)
            window = windows[len(parts)]
            parts.append(core.second_order_temporal(rows[..., : stop - start, :], window))
        Y = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-2)  # (B, 2, n1_max, M)
        return Y.flatten(-3, -2)  # (B, 2 n1_max, M): Re rows, then Im rows

    def second_order_chunked(self, x_rfft: Tensor, n2: int, j2: int, n1_max: int) -> Tensor:
        """:meth:`second_order` of :meth:`first_order_groups`, computed in chunks of first-order
        filters of at most :attr:`chunk_elems` samples per plane, each chunk (first order, its
        ``rfft``, second-order wavelet) checkpointed: only ``Y`` is kept for the backward.

        Shape: ``x_rfft`` ``(B, Np/2 + 1)`` -> ``(B, 2 n1_max, Np / 2**j2)``.
        """
        groups = self._used_groups(n1_max)
        windows = self.psi2_windows(n2, j2, tuple(k1 for k1, _, _ in groups), x_rfft.real.dtype)

        def chunk(x_rfft: Tensor, k1: int, start: int, stop: int, window: Window) -> Tensor:
            U1 = core.first_order(x_rfft, self._psi1_window(k1, start, stop, x_rfft.real.dtype))
            return core.second_order_temporal(U1, window)

        parts: list[Tensor] = []
        for (k1, start, stop), window in zip(groups, windows, strict=True):
            size = max(1, self.chunk_elems // (x_rfft.shape[0] * (self.config.Np >> k1)))
            for a in range(start, stop, size):
                parts.append(_checkpointed(chunk, x_rfft, k1, a, min(a + size, stop), window))
        return torch.cat(parts, dim=-2).flatten(-3, -2)

    def frequential(self, Y: Tensor, paths: Sequence[JTFSPath]) -> list[Tensor]:
        """Frequential filter, modulus and averagings of several paths of one ``n2`` sharing ``Y``
        (stacked planes, as :meth:`second_order` returns them).

        Filters with the same decimation are stacked into one matrix, so the modulus and the
        temporal averaging (the dominant costs) run once over all their rows.
        """
        dtype, n1, M = Y.dtype, Y.shape[-2] // 2, Y.shape[-1]
        c = self.config
        by_k: dict[int, list[JTFSPath]] = {}
        for p in paths:
            by_k.setdefault(self._k_fr(p.j_fr), []).append(p)
        out: dict[int, Tensor] = {}
        for group in by_k.values():
            ops = [self.frequential_operator(p.n_fr, n1, dtype) for p in group]
            stacked = ops[0] if len(ops) == 1 else core.stack_operators(ops)
            Phi = None if c.global_T else self.operator("phi_t", group[0].j2, M, dtype)
            if self.low_memory:
                S_all = self._frequential_chunked(Y, stacked, Phi)
            else:
                S_all = core.average_time(core.frequential_scattering(Y, stacked), Phi)
            S_all = S_all.split([o.H_block.shape[0] // 2 for o in ops], dim=-2)
            for p, op, S in zip(group, ops, S_all, strict=True):
                S = core.unprune_rows(S, op, Phi, M)
                if p.spin != 0:
                    A = (
                        None
                        if c.global_F
                        else self.operator("phi_fr", self._k_fr(p.j_fr), S.shape[-2], dtype)
                    )
                    S = core.average_frequency(S, A)
                out[p.idx] = S
        return [out[p.idx] for p in paths]

    def _frequential_chunked(self, Y: Tensor, op: core.FrequentialOperator, Phi: Tensor | None) -> Tensor:
        """``average_time(frequential_scattering(Y, op), Phi)`` by chunks of the operator's rows of
        at most :attr:`chunk_elems` samples per plane, each checkpointed. Shape ``(B, R, n_time)``."""
        R = op.H_block.shape[0] // 2
        size = max(1, self.chunk_elems // (Y.shape[0] * Y.shape[-1]))

        def chunk(Y: Tensor, a: int, b: int) -> Tensor:
            H = torch.cat([op.H_block[a:b], op.H_block[R + a : R + b]])
            return core.average_time(core.frequential_scattering(Y, op._replace(H_block=H)), Phi)

        parts = [_checkpointed(chunk, Y, a, min(a + size, R)) for a in range(0, R, size)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-2)

    # -- public computations -----------------------------------------------------------------------
    def path(self, x: Tensor, path_idx: int) -> Tensor:
        """Return the coefficients of one second-order path, computing only what it needs.

        Only the first-order filters with ``j1 < j2`` are computed (``n1_max`` of them).

        Args:
            x: signals, shape ``(B, N)``.
            path_idx: index into :attr:`paths`.

        Returns:
            Shape ``(B, n_freq, n_time)``.
        """
        if not 0 <= path_idx < self.n_paths:
            raise ValueError(f"path_idx must be in [0, {self.n_paths}), got {path_idx!r}")
        p = self.paths[path_idx]
        n1_max = min(p.n1_max, self.n1_limit)
        x_rfft = self.padded_spectrum(x)
        if self.low_memory:
            Y = self.second_order_chunked(x_rfft, p.n2, p.j2, n1_max)
        else:
            U1 = self.first_order_groups(x_rfft, n1_max, spectra=False)  # streamed group by group
            Y = self.second_order(U1, p.n2, p.j2, n1_max)
        return self.frequential(Y, [p])[0]

    def all_paths(self, x: Tensor, path_indices: Sequence[int] | None = None) -> list[Tensor]:
        """Return the coefficients of many second-order paths, sharing the first-order stage and
        ``Y[n2]`` between paths; ``all_paths(x)[i] == path(x, path_indices[i])``.

        Returns:
            One tensor per path (default: all, in order), each of shape ``(B, n_freq, n_time)``.
        """
        indices = list(range(self.n_paths)) if path_indices is None else list(path_indices)
        for k in indices:
            if not 0 <= k < self.n_paths:
                raise ValueError(f"path_indices must be in [0, {self.n_paths}), got {k!r}")
        if not indices:
            return []
        U1 = self.first_order(self.padded_spectrum(x), self.n1_limit)
        by_n2: dict[int, list[JTFSPath]] = {}
        for k in dict.fromkeys(indices):
            by_n2.setdefault(self.paths[k].n2, []).append(self.paths[k])
        out: dict[int, Tensor] = {}
        for group in by_n2.values():
            n1_max = min(group[0].n1_max, self.n1_limit)
            Y = self.second_order(U1, group[0].n2, group[0].j2, n1_max)
            out.update(zip((p.idx for p in group), self.frequential(Y, group), strict=True))
        return [out[k] for k in indices]

    def full(self, x: Tensor, *, unpad: bool = True) -> Tensor:
        """Return the full JTFS of ``x`` (first-order paths, then every second-order path), as the
        reference's vendored kymatio computes it with ``format='joint'``.

        See :func:`scrapl.jtfs.full.full_transform`. Shape: ``(B, N)`` ->
        ``(B, K + 1 + n_paths, n_freq, n_time)``; metadata in :attr:`full_paths`.
        """
        return full_transform(self, x, unpad=unpad)

    @property
    def full_paths(self) -> list:
        """Metadata of every path of :meth:`full`, in output order."""
        return full_paths(self)


def _checkpointed(fn: Callable[..., Tensor], x: Tensor, *args: Any) -> Tensor:
    """``fn(x, *args)``; when autograd records it, checkpointed: its intermediates are not kept but
    recomputed in the backward (double backward works, as for Hessian-vector products)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return checkpoint(fn, x, *args, use_reentrant=False, preserve_rng_state=False)
    return fn(x, *args)
