"""What every benchmark section shares: configurations, the peers, timing, peak memory, provenance.

Timing: methods run **interleaved** (round-robin, the starting method rotating every round) so that
load from other processes falls on all of them alike; a method's time is the **median** of its
repeats and ratios are taken between medians measured in the same run.

Peak memory of one call, two ways (CPU):

* **tensors**: the largest total size of the tensor storages created during the call and alive at
  the same time (a ``TorchDispatchMode`` sees every tensor an operator returns, forward and
  backward; storages are counted once and released when freed). Deterministic; it leaves out
  what is not a tensor (FFT plans and work buffers, Python objects, allocator slack).
* **RSS**: the growth of the process's peak resident set size (``VmHWM`` in ``/proc/self/status``)
  over its size at the start of the call, after resetting the peak through
  ``/proc/self/clear_refs`` (Linux >= 4.0). During the call glibc is told (``mallopt``) to serve
  every block above 64 KiB with ``mmap`` and to return freed memory at once, so that memory freed by
  an earlier call cannot hide an allocation (PyTorch's CPU tensors come from ``malloc``; there is
  no caching allocator on CPU). Everything counts, but it moves by a few MiB between runs.

On CUDA both are ``torch.cuda.max_memory_allocated`` minus the memory allocated before the call.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import importlib.metadata
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

ROOT = Path(__file__).resolve().parents[1]

__all__ = [
    "ROOT",
    "JTFSSetup",
    "SEED",
    "PAPER",
    "QUICK",
    "import_reference",
    "quiet_logs",
    "machine_info",
    "load_average",
    "interleaved",
    "median_ms",
    "Peak",
    "PeakMemory",
    "rel_err",
    "sync",
]


@dataclass(frozen=True)
class JTFSSetup:
    """A named JTFS configuration (the keyword arguments of both ``SCRAPLLoss`` classes)."""

    name: str
    shape: int
    J: int
    Q1: int
    Q2: int
    J_fr: int
    Q_fr: int
    T: int | str | None = None
    F: int | str | None = None

    def kwargs(self) -> dict:
        """``shape, J, Q1, Q2, J_fr, Q_fr, T, F`` as keyword arguments."""
        d = asdict(self)
        d.pop("name")
        return d

    def describe(self) -> str:
        """One line: ``N=32768, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2, T=4096, F=8``."""
        return (
            f"N={self.shape}, J={self.J}, Q1={self.Q1}, Q2={self.Q2}, J_fr={self.J_fr}, "
            f"Q_fr={self.Q_fr}, T={self.T}, F={self.F}"
        )

    def with_length(self, shape: int) -> JTFSSetup:
        """The same hyperparameters for another signal length."""
        return JTFSSetup(f"N={shape}", shape, self.J, self.Q1, self.Q2, self.J_fr, self.Q_fr, self.T, self.F)


SEED = JTFSSetup("seed", 48000, 12, 8, 2, 3, 2)
PAPER = JTFSSetup("paper", 32768, 12, 8, 2, 3, 2, 4096, 8)
QUICK = JTFSSetup("quick", 2048, 5, 2, 1, 2, 1)


def quiet_logs() -> None:
    """Silence the INFO banners of both SCRAPLLoss classes."""
    for name in ("scrapl", "scrapl_ref", "scrapl_ref.scrapl_loss"):
        logging.getLogger(name).setLevel(logging.WARNING)


def import_reference():
    """Import scrapl-loss 0.1.0 as ``scrapl_ref`` (unpacked by ``tools/fetch_reference.py``); this
    also puts its vendored kymatio fork on ``sys.path`` as ``kymatio``."""
    try:
        module = importlib.import_module("scrapl_ref")
    except ImportError:
        tools = str(ROOT / "tools")
        if tools not in sys.path:
            sys.path.insert(0, tools)
        from fetch_reference import fetch

        ref_dir = str(fetch())
        if ref_dir not in sys.path:
            sys.path.append(ref_dir)
        module = importlib.import_module("scrapl_ref")
    quiet_logs()
    return module


def sync(device: torch.device) -> None:
    """Wait for queued kernels (CUDA) so that a timer reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (``/proc/loadavg``), or ``"n/a"``."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def _git_commit() -> str:
    try:
        head = _git("rev-parse", "--short", "HEAD")
        # the run's own outputs (RESULTS.md, the plot) do not count: a rerun overwrites them
        dirty = _git(
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            "src",
            "benchmarks",
            ":!benchmarks/RESULTS.md",
            ":!benchmarks/*.png",
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" (+ uncommitted changes in src/ or benchmarks/)" if dirty else "")


def machine_info(device: torch.device) -> dict:
    """Machine, library versions, threads, date and load: what RESULTS.md writes beside the numbers."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none used"
    if device.type != "cuda" and torch.cuda.is_available():
        gpu = f"{torch.cuda.get_device_name(0)} (not used)"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "gpu": gpu,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "versions": {name: _version(name) for name in ("torch", "numpy", "scipy", "auraloss", "scrapl")},
        "reference": "scrapl-loss 0.1.0 (wheel unpacked as scrapl_ref, tools/fetch_reference.py)",
        "commit": _git_commit(),
        "load_average_start": load_average(),
    }


def interleaved(
    methods: Mapping[str, Callable[[], object]], repeats: Mapping[str, int], device: torch.device
) -> dict[str, list[float]]:
    """Time each method ``repeats[name]`` times, round-robin, rotating the order every round.

    Returns:
        ``name -> list of wall-clock seconds``.
    """
    names = list(methods)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(max(repeats.values(), default=0)):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            if len(times[n]) >= repeats[n]:
                continue
            sync(device)
            t0 = time.perf_counter()
            methods[n]()
            sync(device)
            times[n].append(time.perf_counter() - t0)
    return times


def median_ms(times: list[float]) -> float:
    """Median of a list of seconds, in milliseconds (NaN for an empty list)."""
    return statistics.median(times) * 1e3 if times else float("nan")


@dataclass(frozen=True)
class Peak:
    """Peak memory of one call in bytes: live tensor storages, and resident-set growth (None if
    unavailable)."""

    tensors: int
    rss: int | None


class _LiveTensors(TorchDispatchMode):
    """Counts the bytes of the tensor storages created while active and still alive; keeps the peak.

    The output of a view operator shares its input's storage and allocates nothing: it is not
    counted (a view of a tensor made before the call, such as a slice of a module's buffer, would
    otherwise count that whole buffer as created)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def _release(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.is_view:
            return out
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                continue
            storage = t.untyped_storage()
            key, nbytes = storage.data_ptr(), storage.nbytes()
            if nbytes == 0 or key in self._seen:
                continue
            self._seen.add(key)
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._release, key, nbytes)
        return out


class PeakMemory:
    """Peak memory of one call (see the module docstring for the two methods).

    Outside :meth:`measure`, glibc's mmap and trim thresholds are pinned to the values its dynamic
    adjustment converges to in a long-running process (32 MiB, 64 MiB), so that timings outside
    measurements see ordinary allocator behaviour, the same for every method.
    """

    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    STRICT = (64 * 1024, 0)
    STEADY = (32 * 2**20, 64 * 2**20)

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._libc = None
        if device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated - memory_allocated before the call"
            return
        self.method = (
            "tensors: peak of live tensor storages created during the call "
            "(TorchDispatchMode); RSS: growth of the peak resident set over the call"
        )
        try:
            libc = ctypes.CDLL("libc.so.6")
            self._reset_peak()
        except OSError:
            self.method += " (RSS unavailable here)"
            return
        self._libc = libc
        self._set(*self.STEADY)
        self.measure(lambda: torch.ones(8) * 2)  # the first measurement pays one-time set-up (~70 MiB)

    def _set(self, mmap_threshold: int, trim_threshold: int) -> None:
        assert self._libc is not None
        self._libc.mallopt(self.M_MMAP_THRESHOLD, mmap_threshold)
        self._libc.mallopt(self.M_TRIM_THRESHOLD, trim_threshold)

    @staticmethod
    def _reset_peak() -> None:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")

    @staticmethod
    def _status(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def measure(self, fn: Callable[[], object]) -> Peak:
        """Run ``fn`` once and return how far memory rose above what was in use when it started."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            fn()
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) - base
            return Peak(peak, peak)
        tracker = _LiveTensors()
        if self._libc is None:
            with tracker:
                fn()
            return Peak(tracker.peak, None)
        self._set(*self.STRICT)
        try:
            self._libc.malloc_trim(0)
            self._reset_peak()
            base = self._status("VmRSS")
            with tracker:
                fn()
            return Peak(tracker.peak, self._status("VmHWM") - base)
        finally:
            self._set(*self.STEADY)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / ||b||`` in float64 (0 when both are 0)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    den = b.norm().item()
    num = (a - b).norm().item()
    return num / den if den > 0 else num
