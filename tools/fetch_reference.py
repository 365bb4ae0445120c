"""Fetch the reference package scrapl-loss 0.1.0 as the importable test oracle ``scrapl_ref``.

The reference installs a top-level module named ``scrapl``, the same name as this library. It is
therefore never pip-installed: its wheel is downloaded (hash-checked), and the wheel's ``scrapl/``
folder is unpacked as ``.cache/reference/scrapl_ref``. Tests put ``.cache/reference`` on
``sys.path`` and ``import scrapl_ref``. The library itself never imports it.

Usage: ``python tools/fetch_reference.py`` (idempotent; prints the oracle's folder).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "scrapl_loss-0.1.0-py3-none-any.whl"
SHA256 = "e4648793aa9e76e40f3c7e963008f12b9bcbd8719bef801bb2b0cf9d323318ca"
ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / ".cache" / "reference"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(dest: Path = DEST) -> Path:
    """Download, verify and unpack the reference wheel; return the folder to put on sys.path."""
    target = dest / "scrapl_ref"
    marker = target / ".sha256"
    if marker.exists() and marker.read_text().strip() == SHA256:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / WHEEL
    if not wheel.exists() or _sha256(wheel) != SHA256:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "scrapl-loss==0.1.0",
                "-d",
                tmp,
            ]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            shutil.copyfile(Path(tmp) / WHEEL, wheel)
    digest = _sha256(wheel)
    if digest != SHA256:
        raise RuntimeError(f"{wheel} has sha256 {digest}, expected {SHA256}")
    staging = Path(tempfile.mkdtemp(dir=dest))
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.startswith("scrapl/")]
        zf.extractall(staging, members)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging / "scrapl", target)
    shutil.rmtree(staging)
    marker.write_text(SHA256 + "\n")
    return dest


if __name__ == "__main__":
    print(fetch())
