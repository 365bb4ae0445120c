"""The warmup directory: atomic writes, a configuration fingerprint, resuming and loading.

Layout of ``save_dir``::

    meta.json      {"format": "scrapl-warmup", "version": 1, "config": {...},
                    "probs": {"name": "probs.pt", "sha256": ..., "config": {...}}}
                   "config": what the values depend on (JTFS hyperparameters, n_paths, n_theta,
                   n_iter, agg, data and weights fingerprints, ...); "probs" (once probs.pt is
                   written): the fingerprint of probs.pt and the configuration it came from
    vals_{p}.pt    (n_groups, nθ) float32 curvature values of path p (a plain tensor, the
                   format of scrapl-loss 0.1.0)
    probs.pt       (P,) float64 path probabilities: a plain tensor, the format of scrapl-loss
                   0.1.0, so that its ``load_probs`` reads our files and ours reads its files

Directories written before probs.pt became a plain tensor hold a dict
``{"format": "scrapl-warmup-probs", "version": 1, "probs", "config"}`` there; it still loads.

Every file goes through :mod:`scrapl._io`: written to a temporary file in the same directory and
renamed into place, so a crash never leaves a truncated file. ``meta.json`` is created exclusively,
so concurrent workers agree on one configuration; a different configuration in an existing
directory raises ``ValueError`` instead of silently mixing values. All files load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .._io import atomic_create_text, atomic_save, atomic_write_text
from .._logging import get_logger
from .checks import tensor_sha256
from .probs import ThetaISState, aggregate_vals, check_agg

__all__ = [
    "META_NAME",
    "PROBS_NAME",
    "ProbsFile",
    "existing_val_paths",
    "load_probs_file",
    "load_vals",
    "load_warmup_dir",
    "prepare_save_dir",
    "read_meta",
    "save_probs_file",
    "vals_path",
]

log = get_logger("scrapl.warmup")

META_NAME = "meta.json"
PROBS_NAME = "probs.pt"
_VALS_RE = re.compile(r"^vals_(\d+)\.pt$")
_META_FORMAT, _PROBS_FORMAT, _VERSION = "scrapl-warmup", "scrapl-warmup-probs", 1


def vals_path(save_dir: str | os.PathLike, path_idx: int) -> Path:
    """``save_dir/vals_{path_idx}.pt``."""
    return Path(save_dir) / f"vals_{path_idx}.pt"


def _json_config(config: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(dict(config), sort_keys=True))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"config must be JSON-serialisable (str keys; numbers, strings, bools, None, lists, dicts): {err}"
        ) from err


def _read_meta_file(save_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The whole ``save_dir/meta.json``, or None if there is none (validated)."""
    path = Path(save_dir) / META_NAME
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read warmup meta file {path}: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != _META_FORMAT or "config" not in meta:
        raise ValueError(f"{path} is not a scrapl warmup meta file")
    if meta.get("version") != _VERSION:
        raise ValueError(f"{path} has version {meta.get('version')!r}, expected {_VERSION}")
    return meta


def _meta_text(meta: Mapping[str, Any]) -> str:
    return json.dumps({"format": _META_FORMAT, "version": _VERSION, **meta}, indent=2, sort_keys=True)


def read_meta(save_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``config`` recorded in ``save_dir/meta.json``, or None if there is none.

    Raises:
        ValueError: if the file exists but is not a scrapl warmup meta file.
    """
    meta = _read_meta_file(save_dir)
    return None if meta is None else meta["config"]


def _config_diff(found: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(found) | set(expected))
    return [
        f"{k}: directory has {found.get(k, '<missing>')!r}, this run has {expected.get(k, '<missing>')!r}"
        for k in keys
        if found.get(k) != expected.get(k)
    ]


def prepare_save_dir(save_dir: str | os.PathLike, config: Mapping[str, Any]) -> None:
    """Create ``save_dir`` and record ``config`` in it, or check it against the recorded one.

    Args:
        save_dir: the warmup directory (created if missing).
        config: JSON-serialisable description of everything the values depend on.

    Raises:
        TypeError: if ``config`` is not JSON-serialisable.
        ValueError: if the directory records a different configuration, or holds ``vals_*.pt``
            files without a ``meta.json`` (their configuration cannot be verified).
    """
    save_dir = Path(save_dir)
    config = _json_config(config)
    save_dir.mkdir(parents=True, exist_ok=True)
    meta_path = save_dir / META_NAME
    if not meta_path.exists():
        orphans = existing_val_paths(save_dir)
        if orphans:
            raise ValueError(
                f"save_dir {save_dir} holds vals files for paths {orphans[:10]}"
                f"{'...' if len(orphans) > 10 else ''} but no {META_NAME}, so their "
                f"configuration cannot be checked; use an empty save_dir"
            )
        atomic_create_text(_meta_text({"config": config}), meta_path)  # another run may win
    found = read_meta(save_dir)
    assert found is not None  # written above or by a concurrent run
    diff = _config_diff(found, config)
    if diff:
        raise ValueError(
            f"save_dir {save_dir} was written with a different configuration; "
            f"use another save_dir or the same settings:\n  " + "\n  ".join(diff)
        )


def existing_val_paths(save_dir: str | os.PathLike) -> list[int]:
    """Sorted path indices ``p`` with a ``vals_{p}.pt`` file in ``save_dir``."""
    save_dir = Path(save_dir)
    if not save_dir.is_dir():
        return []
    found = (_VALS_RE.match(name) for name in os.listdir(save_dir))
    return sorted(int(m.group(1)) for m in found if m)


def load_vals(path: str | os.PathLike, *, n_theta: int, n_groups: int | None = None) -> Tensor:
    """Load and validate one ``vals_{p}.pt``.

    Args:
        path: the file.
        n_theta: expected number of columns.
        n_groups: expected number of rows (None: any ≥ 1).

    Returns:
        ``(n_groups, nθ)`` float32.

    Raises:
        ValueError: unreadable file, wrong shape, or negative / non-finite values.
    """
    try:
        vals = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(f"cannot load warmup values from {path}: {err}") from err
    if (
        not isinstance(vals, Tensor)
        or vals.ndim != 2
        or vals.shape[1] != n_theta
        or vals.shape[0] < 1
        or (n_groups is not None and vals.shape[0] != n_groups)
    ):
        shape = tuple(vals.shape) if isinstance(vals, Tensor) else type(vals).__name__
        rows = n_groups if n_groups is not None else "n_groups"
        raise ValueError(f"{path} must hold a ({rows}, {n_theta}) tensor, got {shape}")
    if not torch.isfinite(vals).all() or (vals < 0).any():
        raise ValueError(f"{path} holds negative or non-finite values")
    return vals.float()


@dataclass(frozen=True)
class ProbsFile:
    """Contents of a ``probs.pt``: the probabilities and the configuration they came from.

    Attributes:
        probs: ``(P,)`` float64.
        config: the configuration recorded for this very file (in ``meta.json`` beside it, or in
            the file itself for the older dict format), or None (a file of scrapl-loss 0.1.0, a
            copied file, or a file changed since it was recorded).
    """

    probs: Tensor
    config: dict[str, Any] | None


def save_probs_file(path: str | os.PathLike, probs: Tensor, config: Mapping[str, Any]) -> None:
    """Write ``probs`` as a plain ``(P,)`` float64 tensor and record ``config`` in ``meta.json``.

    ``probs.pt`` is what scrapl-loss 0.1.0 writes and reads. Its configuration goes into the
    ``"probs"`` entry of ``meta.json`` in the same directory (created if missing), with the
    file's fingerprint, so that a later load can tell whether it still describes the file. Both
    writes are atomic; the tensor is written first.
    """
    path = Path(path)
    probs = probs.detach().to("cpu", torch.float64).contiguous()
    record = {"name": path.name, "sha256": tensor_sha256([probs]), "config": _json_config(config)}
    atomic_save(probs, path)
    meta = _read_meta_file(path.parent) or {"config": record["config"]}
    meta = {k: v for k, v in meta.items() if k not in ("format", "version")}
    atomic_write_text(_meta_text({**meta, "probs": record}), path.parent / META_NAME)


def _recorded_config(path: Path, probs: Tensor) -> dict[str, Any] | None:
    """The configuration ``meta.json`` records for ``path`` if it matches the file's contents."""
    try:
        meta = _read_meta_file(path.parent)
    except ValueError:
        return None  # a foreign meta.json says nothing about this file
    record = (meta or {}).get("probs")
    if not isinstance(record, dict) or record.get("name") != path.name:
        return None
    if record.get("sha256") != tensor_sha256([probs.to(torch.float64).contiguous()]):
        return None
    return record.get("config")


def load_probs_file(path: str | os.PathLike, *, n_paths: int, name: str = "probs_path") -> ProbsFile:
    """Read a ``probs.pt``: a plain ``(P,)`` tensor (scrapl-loss 0.1.0's format, and ours), or
    the dict this library wrote before. The shape is checked, the values are not renormalised.

    Args:
        path: the file.
        n_paths: the number of paths P it must describe.
        name: the argument the file was given as, for error messages (default ``"probs_path"``).

    Raises:
        ValueError: missing/unreadable file or wrong contents; the message names ``name`` and
            the file.
    """
    path = Path(path)
    where = f"{name} {str(path)!r}"
    if not path.is_file():
        raise ValueError(f"{where}: the file does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(f"{where}: cannot load probs from the file: {err}") from err
    config = None
    if isinstance(obj, dict):  # this library's format before probs.pt became a plain tensor
        if obj.get("format") != _PROBS_FORMAT or "probs" not in obj:
            raise ValueError(f"{where}: the file is not a scrapl warmup probs file")
        obj, config = obj["probs"], obj.get("config")
    if not isinstance(obj, Tensor) or tuple(obj.shape) != (n_paths,):
        shape = tuple(obj.shape) if isinstance(obj, Tensor) else type(obj).__name__
        raise ValueError(f"{where}: the file must hold probabilities of shape ({n_paths},), got {shape}")
    if not obj.is_floating_point():
        raise ValueError(f"{where}: the file must hold floating-point probabilities, got {obj.dtype}")
    if config is None:
        config = _recorded_config(path, obj)
    return ProbsFile(probs=obj.double(), config=config)


def _ranges(indices: list[int]) -> str:
    parts, i = [], 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        parts.append(str(indices[i]) if i == j else f"{indices[i]}-{indices[j]}")
        i = j + 1
    return ", ".join(parts)


def load_warmup_dir(
    warmup_dir: str | os.PathLike,
    *,
    state: ThetaISState,
    agg: str = "none",
    allow_missing: bool = False,
    expected_config: Mapping[str, Any] | None = None,
) -> list[int]:
    """Rebuild the θ-IS probabilities from the ``vals_{p}.pt`` files of a warmup directory.

    ``state`` is reset, then every path's values are aggregated with ``agg`` and recorded in path
    order, so a complete directory gives exactly the probabilities of an uninterrupted warmup.
    Directories written by scrapl-loss 0.1.0 (no ``meta.json``) are accepted.

    Args:
        warmup_dir: the directory.
        state: the probability state to fill (its ``n_paths``/``n_theta`` define what is expected).
        agg: ``"none"``, ``"mean"``, ``"max"`` or ``"med"``, see :func:`aggregate_vals`.
        allow_missing: if False (default), missing paths are an error; if True they are skipped
            with a warning (their probability stays the mixture's ``1/P``), as the reference does.
        expected_config: entries that ``meta.json`` must match when it is present.

    Returns:
        The loaded path indices.

    Raises:
        ValueError: not a directory, configuration mismatch, missing paths (unless
            ``allow_missing``), or a bad values file.
    """
    check_agg(agg)
    warmup_dir = Path(warmup_dir)
    if not warmup_dir.is_dir():
        raise ValueError(f"warmup_dir {warmup_dir} is not a directory")
    meta = read_meta(warmup_dir)
    expected = {"n_paths": state.n_paths, "n_theta": state.n_theta, **(expected_config or {})}
    if meta is not None:
        diff = _config_diff({k: meta.get(k) for k in expected}, expected)
        if diff:
            raise ValueError(f"warmup_dir {warmup_dir} does not match:\n  " + "\n  ".join(diff))
    n_groups = meta.get("n_groups") if meta is not None else None
    present = set(existing_val_paths(warmup_dir))
    missing = [p for p in range(state.n_paths) if p not in present]
    if missing and not allow_missing:
        raise ValueError(
            f"warmup_dir {warmup_dir} has no values for {len(missing)} of "
            f"{state.n_paths} paths: {_ranges(missing)}"
        )
    state.reset()
    loaded = []
    for p in range(state.n_paths):
        if p not in present:
            log.warning("Warmup vals for path index %d do not exist, skipping", p)
            continue
        vals = load_vals(vals_path(warmup_dir, p), n_theta=state.n_theta, n_groups=n_groups)
        state.update_path(p, aggregate_vals(vals, agg))
        loaded.append(p)
    return loaded
