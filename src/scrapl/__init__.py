"""scrapl: the joint time-frequency scattering transform (JTFS) as a fast stochastic training loss.

Layout (data flows one way): ``filters`` (filter design) -> ``jtfs`` (the path engine: path
enumeration, one path, all paths) -> ``loss`` (:class:`SCRAPLLoss`: sampling and distance) ->
``optim`` (path-wise Adam and SAGA) -> ``warmup`` (theta-importance sampling).
"""

from .distance import path_distance
from .engine import PathEngine
from .jtfs import JTFSPath, TimeFrequencyScattering
from .loss import SCRAPLLoss
from .sampling import PathSampler

__version__ = "0.1.0.dev0"

__all__ = [
    "SCRAPLLoss",
    "TimeFrequencyScattering",
    "JTFSPath",
    "PathEngine",
    "PathSampler",
    "path_distance",
]
