"""Path-wise optimizers for a loss that samples one path per step: P-Adam and P-SAGA.

* :mod:`~scrapl.optim.functional`: the update rules as pure functions (paper Eq. 6-9).
* :class:`PathwiseOptimizer`: those rules over a set of parameters, with lazily allocated,
  optionally offloaded, resumable state; used explicitly between ``backward()`` and ``SGD.step()``.
* :class:`PathwiseHooks`: the same optimizer run from tensor hooks during ``backward()``.
* :mod:`~scrapl.optim.provenance`: which paths each gradient came from, so that no step credits
  a gradient to the wrong path (:class:`MixedPathsError`).
"""

from .functional import (
    COMPAT_MODES,
    Compat,
    PAdamResult,
    PSagaResult,
    adam_time,
    p_adam_update,
    p_saga_update,
    saga_denominator,
)
from .hooks import HookContext, PathwiseHooks
from .pathwise import PathwiseConfig, PathwiseOptimizer
from .provenance import BackwardPaths, MixedPathsError
from .state import MemoryReport

__all__ = [
    "COMPAT_MODES",
    "BackwardPaths",
    "Compat",
    "HookContext",
    "MemoryReport",
    "MixedPathsError",
    "PAdamResult",
    "PSagaResult",
    "PathwiseConfig",
    "PathwiseHooks",
    "PathwiseOptimizer",
    "adam_time",
    "p_adam_update",
    "p_saga_update",
    "saga_denominator",
]
