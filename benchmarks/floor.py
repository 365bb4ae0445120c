"""The FFTs an exact step cannot do without: a floor under our step time, timed beside it.

An exact SCRAPL step on path ``k`` must sample every first-order modulus ``|u|`` where the
reference samples it, ``M = Np / 2**k1`` points per first-order filter, because the second-order
wavelet sees that sampling's aliasing (``jtfs-spec.md`` §4-5). With FFTs, each of the ``G`` filters
of a group at decimation ``k1`` costs, per signal of the batch:

* the forward of ``x``: two inverse real FFTs of length ``M`` (``Re u`` and ``Im u``) and one real
  FFT of ``|u|`` (its spectrum, which the second-order wavelet reads);
* the same for ``x_target``;
* the backward: the adjoint of the ``rfft`` of ``|u|`` (one inverse real FFT) and the adjoint of
  the synthesis (two real FFTs of the planes' gradients);

nine real FFTs of length ``M`` in all (five inverse, four forward). :func:`floor_step` runs exactly
those, one call per decimation group and kind (the engine makes fewer calls: it synthesises the
coarse groups on one longer grid, more FFT work than the floor counts), on preallocated inputs
whose outputs are fresh tensors as in a real step. Everything else of the step (reading and
weighting the bands, the moduli and their backward, the second order at lower rates, the
frequential stage, the distance) comes on top. So ``scrapl-loss / floor`` is the largest speed-up
over the reference that an implementation of this transform with these FFTs can show, and
``floor / MSS`` is the share of auraloss's step that these FFTs alone already take.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["floor_ffts", "floor_step"]


def floor_ffts(jtfs, k: int) -> list[tuple[int, int, int]]:
    """``(M, G, k1)`` for each first-order group that path ``k`` uses: transform length, number of
    filters and decimation. The floor's FFTs per signal are ``5 G`` inverse and ``4 G`` forward
    real FFTs of length ``M`` for each group (module doc)."""
    p = jtfs.paths[k]
    n1_max = min(p.n1_max, jtfs.n1_limit)
    groups = jtfs.decimation_groups(n1_max)
    return [(jtfs.config.Np // 2**k1, stop - start, k1) for k1, start, stop in groups]


def floor_step(jtfs, k: int, batch: int, device: torch.device | str = "cpu") -> Callable[[], None]:
    """A callable that runs the FFTs of the floor of one step on path ``k`` of ``jtfs`` (a
    :class:`~scrapl.TimeFrequencyScattering`) for a batch of ``batch`` signals, float32.

    Per group ``(M, G)`` of :func:`floor_ffts`: ``irfft`` of a ``(B, 2, G, M/2+1)`` half spectrum
    and ``rfft`` of ``(B, G, M)`` rows, twice (``x``, ``x_target``); then ``irfft`` of
    ``(B, G, M/2+1)`` and ``rfft`` of ``(B, 2, G, M)`` (the backward).
    """
    buffers = []
    for M, G, _ in floor_ffts(jtfs, k):
        halves = torch.zeros(batch, 2, G, M // 2 + 1, dtype=torch.complex64, device=device)
        half = torch.zeros(batch, G, M // 2 + 1, dtype=torch.complex64, device=device)
        planes = torch.zeros(batch, 2, G, M, device=device)
        buffers.append((M, halves, half, planes))

    def run() -> None:
        for M, halves, half, planes in buffers:
            for _ in range(2):  # x, then x_target: the synthesis, and the spectrum of |u|
                torch.fft.irfft(halves, n=M)
                torch.fft.rfft(planes[:, 0])
            torch.fft.irfft(half, n=M)  # backward: the rfft's adjoint
            torch.fft.rfft(planes)  # and the synthesis' adjoint

    return run
