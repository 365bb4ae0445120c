"""scrapl: the joint time-frequency scattering transform (JTFS) as a fast stochastic training loss.

Layout (data flows one way): ``filters`` (filter design) -> ``jtfs`` (the path engine: path
enumeration, one path, all paths) -> ``loss`` (:class:`SCRAPLLoss`: sampling and distance) ->
``optim`` (path-wise Adam and SAGA) -> ``warmup`` (theta-importance sampling).
"""

__version__ = "0.1.0.dev0"
