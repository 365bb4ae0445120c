"""Shared test fixtures. The reference package scrapl-loss 0.1.0 is the test oracle: it is unpacked
by ``tools/fetch_reference.py`` as ``.cache/reference/scrapl_ref`` and imported under that name
(it would otherwise shadow this library's top-level ``scrapl``). Parity tests never skip: when the
oracle is missing it is fetched, and a failure to fetch it fails the tests that need it.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


def _import_reference():
    from fetch_reference import fetch

    ref_dir = str(fetch())
    if ref_dir not in sys.path:
        sys.path.append(ref_dir)
    module = importlib.import_module("scrapl_ref")
    # the reference calls logging.basicConfig() at import and logs at INFO; keep test output quiet
    logging.getLogger("scrapl_ref").setLevel(logging.WARNING)
    return module


@pytest.fixture(scope="session")
def scrapl_ref():
    """The reference package scrapl-loss 0.1.0, imported as ``scrapl_ref``."""
    return _import_reference()


@pytest.fixture(scope="session", autouse=True)
def _intra_op_threads():
    """One torch thread by default (``SCRAPL_TEST_THREADS`` to change): on a shared 2-core machine a
    second thread that waits for a core turns microsecond FFTs into millisecond ones."""
    n = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("SCRAPL_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


def pytest_addoption(parser):
    parser.addoption(
        "--allpaths",
        action="store_true",
        default=False,
        help="run parity on every path of every large configuration (slow)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--allpaths"):
        return
    skip = pytest.mark.skip(reason="opt-in: pass --allpaths to run every path of large configs")
    for item in items:
        if "allpaths" in item.keywords:
            item.add_marker(skip)
