"""``TimeFrequencyScattering``: the JTFS path engine (one path, many paths, or the full transform).

The module validates its configuration, builds what every path needs once
(:class:`~scrapl.jtfs.plan.JTFSPlan`, registered buffers that follow ``.to()`` / ``.double()``),
and runs the three stages of a path: the first order and the second-order temporal wavelet
(:mod:`scrapl.jtfs.scalogram`), then the frequential filter, modulus and averagings
(:mod:`scrapl.jtfs.core`). A path's step has a fixed sequence of operators whatever the data, with
no value read back on the host, so it can be captured in a CUDA graph or compiled.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .._checks import as_bool
from .._signals import compute_dtype
from . import core, full
from .config import AveragingArg, JTFSConfig
from .filterbank import FilterBank, FirstOrderPath, JTFSPath
from .ops import modulus, reflect_pad
from .plan import FrequentialPlan, JTFSPlan, SecondOrderPart, SecondOrderPlan
from .scalogram import (
    RunSpec,
    SecondOrderSpec,
    SpectrumSpec,
    SynthesisSpec,
    WindowSpec,
    run,
    second_order,
    spectrum,
    synthesis,
    window,
)

__all__ = ["TimeFrequencyScattering"]


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
            real plane (first-order wavelets, then frequential rows; the frequential stage of
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
        self.plan = JTFSPlan(c, bank, self.n1_limit)

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

    @property
    def full_paths(self) -> list[FirstOrderPath | JTFSPath]:
        """Metadata of every path of :meth:`full`, in output order."""
        return [*full.first_order_paths(self.bank, self.n1_limit), *self.paths]

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

    def decimation_groups(self, n1_max: int) -> list[tuple[int, int, int]]:
        """``(k1, start, stop)``: the first-order filters ``n1 < n1_max`` in runs sharing a decimation
        ``k1`` (``U1`` of those filters has ``Np / 2**k1`` samples)."""
        groups: list[tuple[int, int, int]] = []
        for n1, w in enumerate(self.bank.psi1[: min(n1_max, self.n1_limit)]):
            k1 = self.config.k1(w.j)
            if groups and groups[-1][0] == k1:
                groups[-1] = (k1, groups[-1][1], n1 + 1)
            else:
                groups.append((k1, n1, n1 + 1))
        return groups

    # -- stages ------------------------------------------------------------------------------------
    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype paths are computed in: the module's (float32 for a half-precision module)."""
        return compute_dtype(self.plan.first_order.spectrum_sign.dtype)

    def padded(self, x: Tensor) -> Tensor:
        """Validate ``x`` of shape ``(B, N)``; return it reflect-padded to ``Np`` samples, in
        :attr:`compute_dtype`, shape ``(B, Np)``."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a real floating-point tensor, got dtype {x.dtype}")
        if x.dim() != 2 or x.shape[-1] != self.config.N:
            raise ValueError(f"x must have shape (batch, {self.config.N}), got {tuple(x.shape)}")
        return reflect_pad(x.to(self.compute_dtype), self.config.pad_left, self.config.pad_right)

    def spectra(self, x_pad: Tensor, n_clusters: int) -> tuple[Tensor, ...]:
        """The ranges of the extended spectrum that clusters ``0 .. n_clusters - 1`` read,
        ``(B, span, 2)`` each (:func:`~scrapl.jtfs.scalogram.spectrum`)."""
        fo = self.plan.first_order
        spans = tuple(fo.cluster(c).span for c in range(n_clusters))
        return self._spectrum(x_pad, 0, spans)

    def _spectrum(self, x: Tensor, start: int, spans: tuple[int, ...]) -> tuple[Tensor, ...]:
        """Ranges of ``spans`` bins, whole clusters' ranges one after the other from bin ``start`` of
        the extended spectrum's layout; ``x`` is ``x_pad``, or its half spectrum (complex: then the
        ``rfft`` is not taken again)."""
        fo, dtype, half = self.plan.first_order, x.real.dtype, x.is_complex()
        a, b = start, start + sum(spans)
        consts = (
            fo.spectrum_index[2 * a : 2 * b],
            _as(fo.spectrum_sign[2 * a : 2 * b], dtype),
            _as((fo.spectrum_sign if half else fo.fold_weight)[2 * a : 2 * b], dtype),
        )
        return spectrum(x, SpectrumSpec(self.config.Np, spans, half), consts)

    def planes(self, Fc: Tensor, part: SecondOrderPart) -> Tensor:
        """The analytic signals of rows ``part.first ..`` of a cluster, from the cluster's range
        ``Fc`` of :meth:`spectra`: ``(B, 2, G, M)`` (linear in the signals)."""
        cp = self.plan.first_order.cluster(part.cluster)
        cl, (lo, hi), dtype = cp.cluster, cp.run, Fc.dtype
        rows = slice(part.first, part.first + part.rows)
        spec = WindowSpec(part.rows, cl.length, cl.window, part.first, cl.d, lo, hi)
        positions = cp.positions[rows.start * (hi - lo) : rows.stop * (hi - lo)]
        consts = (_as(cp.weight[:, rows], dtype), _as(cp.adjoint_weight[rows], dtype), positions)
        return window(Fc, spec, consts)

    def first_order(self, x_pad: Tensor, parts: Sequence[SecondOrderPart]) -> list[Tensor]:
        """First-order moduli ``U1`` of rows ``first ..`` of each part's cluster, ``(B, G, M)`` each
        (a row of decimation ``k1`` is sampled every ``M / (Np / 2**k1)`` samples)."""
        ranges = self.spectra(x_pad, max(p.cluster for p in parts) + 1)
        return [modulus(self.planes(ranges[part.cluster], part)) for part in parts]

    def _second_order_args(
        self, reader: SecondOrderPlan, dtype: torch.dtype, chunk: tuple[int, int, int] | None = None
    ) -> tuple[SecondOrderSpec, tuple]:
        """Spec and constants of :func:`~scrapl.jtfs.scalogram.second_order` for ``reader``'s parts,
        or for ``chunk = (i, a, b)``, rows ``a .. b-1`` of part ``i`` (low-memory chunks)."""
        chunks = [(i, 0, p.rows) for i, p in enumerate(reader.parts)] if chunk is None else [chunk]
        weight, adjoint = reader.weight, reader.adjoint_weight
        if chunk is not None:
            i, a, b = chunk
            row = sum(p.rows for p in reader.parts[:i]) + a
            weight, adjoint = weight[row : row + b - a], adjoint[row : row + b - a]
        consts: list[Any] = [_as(weight, dtype), _as(adjoint, dtype), _as(self.plan.rotation, dtype)]
        consts.append(reader.wrap)
        runs = []
        for i, a, b in chunks:
            part = reader.parts[i]
            cp = self.plan.first_order.cluster(part.cluster)
            M, S = cp.cluster.length, reader.run
            index = reader.index(i)
            if (a, b) != (0, part.rows):
                index = index[a * S : b * S] - a * (M // 2 + 1)
            mask = None if cp.mask is None else _as(cp.mask[part.first + a : part.first + b], dtype)
            consts += [index, mask]
            runs.append(RunSpec(b - a, M, S))
        spec = SecondOrderSpec(tuple(runs), SynthesisSpec(reader.run, reader.n_out, reader.one_sided))
        return spec, tuple(consts)

    def second_order(self, U1s: Sequence[Tensor], reader: SecondOrderPlan) -> Tensor:
        """``Y[n2]`` as planes ``(B, 2, n1, Np / 2**j2)`` from the moduli of :meth:`first_order`."""
        return second_order(tuple(U1s), *self._second_order_args(reader, U1s[0].dtype))

    def scattering(self, x_pad: Tensor, reader: SecondOrderPlan) -> Tensor:
        """``Y[n2]`` of ``x_pad`` (:meth:`second_order` of :meth:`first_order`), cluster by cluster;
        without autograd, each cluster's analytic signals and moduli are freed as soon as its run
        is read (the same operators)."""
        ranges = self.spectra(x_pad, reader.parts[-1].cluster + 1)
        U1 = (modulus(self.planes(ranges[part.cluster], part)) for part in reader.parts)
        if torch.is_grad_enabled() and x_pad.requires_grad:
            return self.second_order(list(U1), reader)
        spec, consts = self._second_order_args(reader, x_pad.dtype)
        runs = [
            run(U, r, consts[4 + 2 * i : 6 + 2 * i])
            for i, (U, r) in enumerate(zip(U1, spec.runs, strict=True))
        ]
        return synthesis(runs, spec.synthesis, consts[:4])

    def frequential(self, Y: Tensor, paths: Sequence[JTFSPath]) -> list[Tensor]:
        """Frequential filter, modulus and averagings of paths sharing ``Y`` (one ``n2``).

        Filters with the same decimation are stacked into one matrix, so the modulus and the
        temporal averaging (the dominant costs) run once over all their rows.
        """
        dtype = Y.dtype
        Phi = self.plan.average(paths[0].j2, dtype)
        by_k: dict[int, list[JTFSPath]] = {}
        for p in paths:
            by_k.setdefault(self.config.k_fr(p.j_fr), []).append(p)
        out: dict[int, Tensor] = {}
        for group in by_k.values():
            plans: list[FrequentialPlan] = [self.plan.frequential_plan(p) for p in group]
            H = core.stack_rows([fp.constant("H", dtype) for fp in plans])
            if self.low_memory:
                S_all = self._frequential_chunked(Y, H, Phi)
            else:
                S_all = core.average_time(core.frequential_scattering(Y, H), Phi)
            S_parts = S_all.split([fp.rows(dtype) for fp in plans], dim=-2)
            for p, fp, S in zip(group, plans, S_parts, strict=True):
                out[p.idx] = core.average_frequency(S, fp.constant("C", dtype), fp.constant("bias", dtype))
        return [out[p.idx] for p in paths]

    # -- low-memory variants -----------------------------------------------------------------------
    def _second_order_chunked(self, x_pad: Tensor, reader: SecondOrderPlan) -> Tensor:
        """:meth:`scattering` in chunks of first-order rows of at most :attr:`chunk_elems` samples
        per plane, each chunk (its cluster's range of the spectrum, analytic signals, moduli, its
        rows of ``Y``) checkpointed: only the half spectrum and ``Y`` are kept for the backward.
        Shape ``(B, 2, n1, Np / 2**j2)``."""
        X = torch.fft.rfft(x_pad)
        chunks = []
        for i, part in enumerate(reader.parts):
            M = self.plan.first_order.cluster(part.cluster).cluster.length
            size = max(1, self.chunk_elems // (x_pad.shape[0] * M))
            for a in range(0, part.rows, size):
                chunks.append(_checkpointed(self._chunk, X, reader, i, a, min(a + size, part.rows)))
        return torch.cat(chunks, dim=-2)

    def _chunk(self, X: Tensor, reader: SecondOrderPlan, i: int, a: int, b: int) -> Tensor:
        """``Y``'s rows of rows ``a .. b-1`` of part ``i`` of ``reader``, from the half spectrum ``X``."""
        part = reader.parts[i]
        fo = self.plan.first_order
        (Fc,) = self._spectrum(X, fo.offset(part.cluster), (fo.cluster(part.cluster).span,))
        U1 = modulus(self.planes(Fc, SecondOrderPart(part.cluster, part.first + a, b - a)))
        return second_order((U1,), *self._second_order_args(reader, U1.dtype, (i, a, b)))

    def _frequential_chunked(self, Y: Tensor, H: Tensor, Phi: Tensor | None) -> Tensor:
        """``average_time(frequential_scattering(Y, H), Phi)`` by chunks of ``H``'s rows of at most
        :attr:`chunk_elems` samples per plane, each checkpointed. Shape ``(B, R, n_time)``."""
        R = H.shape[0] // 2
        size = max(1, self.chunk_elems // (Y.shape[0] * Y.shape[-1]))

        def chunk(Y: Tensor, a: int, b: int) -> Tensor:
            rows = torch.cat([H[a:b], H[R + a : R + b]])
            return core.average_time(core.frequential_scattering(Y, rows), Phi)

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
        x_pad = self.padded(x)
        reader = self.plan.reader(p)
        Y = self._second_order_chunked(x_pad, reader) if self.low_memory else self.scattering(x_pad, reader)
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
        by_n2: dict[int, list[JTFSPath]] = {}
        for k in dict.fromkeys(indices):
            by_n2.setdefault(self.paths[k].n2, []).append(self.paths[k])
        out = dict(self._second_order_paths(self.padded(x), list(by_n2.values())))
        return [out[k] for k in indices]

    def _second_order_paths(self, x_pad: Tensor, groups: list[list[JTFSPath]]) -> list[tuple[int, Tensor]]:
        """``(path index, coefficients)`` of every path of ``groups`` (paths sharing ``n2``), from
        one first order of every cluster."""
        U1 = self.scalograms(x_pad)
        out: list[tuple[int, Tensor]] = []
        for group in groups:
            reader = self.plan.reader(group[0])
            U1s = [U1[part.cluster][:, part.first :] for part in reader.parts]
            S = self.frequential(self.second_order(U1s, reader), group)
            out += zip((p.idx for p in group), S, strict=True)
        return out

    def scalograms(self, x_pad: Tensor) -> list[Tensor]:
        """First-order moduli of every cluster (all rows), ``(B, G, M)`` each."""
        clusters = self.plan.first_order.layout
        return self.first_order(x_pad, [SecondOrderPart(c, 0, len(cl.n1)) for c, cl in enumerate(clusters)])

    def full(self, x: Tensor, *, unpad: bool = True) -> Tensor:
        """Return the full JTFS of ``x`` (first-order paths, then every second-order path), as the
        reference's vendored kymatio computes it with ``format='joint'``.

        Args:
            x: signals, shape ``(B, N)``.
            unpad: keep only the frames that overlap the unpadded signal (what kymatio returns);
                ``False`` keeps all ``Np / 2**log2_T`` frames (what the SCRAPL loss compares).

        Returns:
            Shape ``(B, K + 1 + n_paths, n_freq, n_time)``; metadata in :attr:`full_paths`.

        Raises:
            ValueError: with ``F='global'``, whose paths do not share one shape (use ``all_paths``).
        """
        c = self.config
        if c.global_F:
            raise ValueError(
                "F='global' gives paths of different shapes (spin-0 paths keep their "
                "frequential rows); use all_paths() for a list of per-path tensors"
            )
        x_pad = self.padded(x)
        U1 = self.scalograms(x_pad)
        first = full.first_order_jtfs(c, self.bank, self.n1_limit, self.plan.first_order.layout, U1)
        by_n2: dict[int, list[JTFSPath]] = {}
        for p in self.paths:
            by_n2.setdefault(p.n2, []).append(p)
        second = [S for _, S in self._second_order_paths(x_pad, list(by_n2.values()))]
        S_all = torch.stack([*first, *second], dim=-3)  # (B, n_paths_full, n_freq, n_time)
        return S_all[..., full.unpad_frames(c)] if unpad else S_all


def _as(t: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """``t`` in ``dtype`` (unchanged if it already is, or if ``dtype`` is None)."""
    return t if dtype is None or t.dtype == dtype else t.to(dtype)


def _checkpointed(fn: Callable[..., Tensor], x: Tensor, *args: Any) -> Tensor:
    """``fn(x, *args)``; when autograd records it, checkpointed: its intermediates are not kept but
    recomputed in the backward (double backward works, as for Hessian-vector products)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return checkpoint(fn, x, *args, use_reentrant=False, preserve_rng_state=False)
    return fn(x, *args)
