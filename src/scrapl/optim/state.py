"""Storage of the path-wise optimizer state: lazily allocated per-path rows and running sums.

Layout (also the layout of :meth:`PathwiseState.to_dict`, made of plain dicts, lists, ints and
tensors so that ``torch.load(weights_only=True)`` reads it)::

    step       int            latest training step k processed
    visited    list[int]      distinct paths processed so far, sorted
    params     list, one entry per parameter tensor i:
        memory_sum  Tensor | None     running sum S_i of the P-SAGA memory rows
        paths       dict[int, dict]   only visited paths p, each with
            step        int           clock τ of the last P-Adam visit (0 without P-Adam)
            exp_avg     Tensor        P-Adam first moment m (present with P-Adam)
            exp_avg_sq  Tensor        P-Adam second moment v (present with P-Adam)
            memory      Tensor        P-SAGA memory M (present with P-SAGA)

Placement: running sums always live on the parameter's device in its dtype (O(numel) per tensor).
Per-path rows live there too, or, with ``offload=True``, in host memory (pinned when the parameter
is on CUDA), and only the current path's row is copied to the device for an update. A row or sum
found on another device or dtype than its parameter (after ``model.to(...)`` or loading a
checkpoint) is moved on first use.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__ = ["MemoryReport", "PathwiseState", "ROW_TENSORS"]

ROW_TENSORS: tuple[str, ...] = ("exp_avg", "exp_avg_sq", "memory")


class MemoryReport(NamedTuple):
    """Bytes held by the optimizer state.

    Attributes:
        device_bytes: Bytes on the parameters' devices (running sums, and per-path rows unless
            offloaded).
        offloaded_bytes: Bytes of per-path rows kept in host memory (``offload=True``).
    """

    device_bytes: int
    offloaded_bytes: int

    @property
    def total_bytes(self) -> int:
        """Sum of both."""
        return self.device_bytes + self.offloaded_bytes


def _pin(param: Tensor) -> bool:
    return param.is_cuda and torch.cuda.is_available()


class PathwiseState:
    """Per-parameter, per-path state of P-Adam and P-SAGA, allocated only for visited paths.

    Args:
        params: The parameter tensors whose device and dtype the state follows.
        offload: Keep per-path rows in host memory instead of on the parameters' devices.
    """

    def __init__(self, params: list[Tensor], *, offload: bool) -> None:
        self._params = params
        self.offload = offload
        self.clear()

    def clear(self) -> None:
        """Drop all state: no path visited, step 0."""
        self.step = 0
        self.visited: set[int] = set()
        self._rows: list[dict[int, dict[str, Any]]] = [{} for _ in self._params]
        self._sums: list[Tensor | None] = [None] * len(self._params)

    # -- placement ---------------------------------------------------------------------------

    def _to_param(self, i: int, t: Tensor, *, copy: bool = False) -> Tensor:
        p = self._params[i]
        # asynchronous only towards CUDA: a non-blocking copy to the CPU would need a sync to read
        return t.to(device=p.device, dtype=p.dtype, non_blocking=p.is_cuda, copy=copy)

    def _to_host(self, i: int, t: Tensor, out: Tensor | None) -> Tensor:
        p = self._params[i]
        pin = _pin(p)
        if out is None or out.shape != t.shape or out.dtype != p.dtype or out.is_pinned() != pin:
            out = torch.empty(t.shape, dtype=p.dtype, device="cpu", pin_memory=pin)
        return out.copy_(t, non_blocking=True)

    def _place(self, i: int, t: Tensor, old: Tensor | None, *, copy: bool) -> Tensor:
        """Store ``t`` where rows of parameter ``i`` live (reusing ``old``'s host buffer)."""
        return self._to_host(i, t, old) if self.offload else self._to_param(i, t, copy=copy)

    def synchronize(self) -> None:
        """Wait for pending host copies, so that offloaded rows can be read on the CPU."""
        if self.offload and any(_pin(p) for p in self._params):
            torch.cuda.synchronize()

    # -- rows and sums -----------------------------------------------------------------------

    def num_rows(self, i: int) -> int:
        """Number of paths with a stored row for parameter ``i``."""
        return len(self._rows[i])

    def last_step(self, i: int, path: int) -> int:
        """Clock τ of the last P-Adam visit of ``path`` for parameter ``i`` (0: never)."""
        row = self._rows[i].get(path)
        return 0 if row is None else row["step"]

    def get_row(self, i: int, path: int) -> dict[str, Tensor]:
        """Tensors of the row of ``path`` for parameter ``i`` on the parameter's device and dtype.

        Returns an empty dict for an unvisited path. Rows on a stale device or dtype are moved.
        """
        row = self._rows[i].get(path)
        if row is None:
            return {}
        out = {name: self._to_param(i, row[name]) for name in ROW_TENSORS if name in row}
        if not self.offload:
            row.update(out)  # persist a migration; a no-op when already in place
        return out

    def put_row(self, i: int, path: int, *, last_step: int, tensors: dict[str, Tensor]) -> None:
        """Store the new row of ``path`` for parameter ``i`` (``tensors`` are taken over)."""
        old = self._rows[i].get(path, {})
        row: dict[str, Any] = {"step": int(last_step)}
        for name, t in tensors.items():
            row[name] = self._place(i, t, old.get(name), copy=False)
        self._rows[i][path] = row

    def get_sum(self, i: int) -> Tensor | None:
        """Running P-SAGA sum of parameter ``i`` on its device and dtype, or None."""
        s = self._sums[i]
        if s is not None:
            s = self._sums[i] = self._to_param(i, s)
        return s

    def put_sum(self, i: int, memory_sum: Tensor) -> None:
        """Store the running P-SAGA sum of parameter ``i`` (taken over)."""
        self._sums[i] = self._to_param(i, memory_sum)

    # -- reporting and serialisation ----------------------------------------------------------

    def memory(self) -> MemoryReport:
        """Bytes held on the parameters' devices and in host memory."""
        rows = sum(
            row[name].nbytes
            for rows in self._rows
            for row in rows.values()
            for name in ROW_TENSORS
            if name in row
        )
        sums = sum(s.nbytes for s in self._sums if s is not None)
        if self.offload:
            return MemoryReport(device_bytes=sums, offloaded_bytes=rows)
        return MemoryReport(device_bytes=sums + rows, offloaded_bytes=0)

    def to_dict(self) -> dict[str, Any]:
        """Plain-container snapshot; tensors are shared with the live state, as in torch.optim."""
        self.synchronize()
        return {
            "step": self.step,
            "visited": sorted(self.visited),
            "params": [
                {"memory_sum": s, "paths": {p: dict(row) for p, row in sorted(rows.items())}}
                for rows, s in zip(self._rows, self._sums, strict=True)
            ],
        }

    def load_dict(self, state: dict[str, Any]) -> None:
        """Replace the state with a copy of ``state`` (the layout of :meth:`to_dict`)."""
        entries = _check_layout(state, self._params)
        self.clear()
        self.step = int(state["step"])
        self.visited = {int(p) for p in state["visited"]}
        for i, entry in enumerate(entries):
            if entry["memory_sum"] is not None:
                self._sums[i] = self._to_param(i, entry["memory_sum"], copy=True)
            for path, row in entry["paths"].items():
                tensors = {n: self._place(i, row[n], None, copy=True) for n in ROW_TENSORS if n in row}
                self._rows[i][int(path)] = {"step": int(row["step"]), **tensors}


def _check_layout(state: object, params: list[Tensor]) -> list[dict[str, Any]]:
    """Validate the structure of a state dict; return its per-parameter entries."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    for key in ("step", "visited", "params"):
        if key not in state:
            raise ValueError(f"state is missing the key {key!r}")
    entries = state["params"]
    if not isinstance(entries, list) or len(entries) != len(params):
        n = len(entries) if isinstance(entries, list) else entries
        raise ValueError(f"state['params'] must list {len(params)} parameter entries, got {n!r}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"memory_sum", "paths"} <= entry.keys():
            raise ValueError(f"state['params'][{i}] must be a dict with 'memory_sum' and 'paths'")
        shape = tuple(params[i].shape)
        tensors = [("memory_sum", entry["memory_sum"])]
        for path, row in entry["paths"].items():
            if not isinstance(row, dict) or "step" not in row:
                raise ValueError(f"state['params'][{i}] paths[{path}] must be a dict with 'step'")
            tensors += [(f"paths[{path}][{n!r}]", row[n]) for n in ROW_TENSORS if n in row]
        for name, t in tensors:
            if t is not None and not isinstance(t, torch.Tensor):
                raise TypeError(f"state['params'][{i}] {name} must be a tensor, got {type(t).__name__}")
            if t is not None and tuple(t.shape) != shape:
                raise ValueError(
                    f"state['params'][{i}] {name} has shape {tuple(t.shape)}, "
                    f"expected the parameter's shape {shape}"
                )
    return entries
