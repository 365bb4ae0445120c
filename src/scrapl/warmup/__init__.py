"""θ-importance sampling (θ-IS) warmup: curvature of each scattering path, path probabilities.

Engine-independent: the warmup only needs ``path_loss(x_hat, x, path_idx) -> scalar``.

* :mod:`.options`: :class:`WarmupOptions` (what a user decides) and :class:`Strategy` (speed only).
* :mod:`.problem`: :class:`WarmupProblem`, the functions, data and weights, validated.
* :mod:`.power`, :mod:`.arnoldi`: batched eigenvalue iterations (+ reference start vectors).
* :mod:`.hvp`: the curvature operator ``A_u`` by double backward ("direct" engine).
* :mod:`.factored`: the same operator through the θ-space Hessian ("factored" engine).
* :mod:`.curvature`: the values of one path (operators + iteration, non-finite values refused).
* :mod:`.probs`: the θ-IS probability state (``update_prob``), Eq. (10), checks.
* :mod:`.files`: the warmup directory, configuration fingerprint, resume, probability files.
* :mod:`.distributed`: sharding paths over ``torch.distributed`` ranks.
* :mod:`.driver`: :func:`run_warmup`, the whole warmup.
"""

from .._io import atomic_save
from .checks import check_is_deterministic
from .curvature import NonFiniteCurvatureError, path_curvatures, start_vectors
from .driver import WarmupResult, run_warmup
from .factored import BatchHessian, FactoredCurvature, ThetaHessian, batch_theta_hessian
from .files import (
    ProbsFile,
    load_probs_file,
    load_warmup_dir,
    prepare_save_dir,
    read_meta,
    save_probs_file,
)
from .hvp import DirectCurvature, hvp_rows, theta_param_grads
from .options import AGG_MODES, Strategy, WarmupOptions
from .power import (
    NonFiniteProductError,
    PowerIterationResult,
    ReferenceInitStream,
    dense_matvec,
    power_iteration,
    seeded_init,
)
from .problem import PathLoss, WarmupBatch, WarmupProblem
from .probs import ThetaISState, aggregate_vals, check_probs, closed_form_probs

__all__ = [
    "AGG_MODES",
    "BatchHessian",
    "DirectCurvature",
    "FactoredCurvature",
    "NonFiniteCurvatureError",
    "NonFiniteProductError",
    "PathLoss",
    "PowerIterationResult",
    "ProbsFile",
    "ReferenceInitStream",
    "Strategy",
    "ThetaHessian",
    "ThetaISState",
    "WarmupBatch",
    "WarmupOptions",
    "WarmupProblem",
    "WarmupResult",
    "aggregate_vals",
    "atomic_save",
    "batch_theta_hessian",
    "check_is_deterministic",
    "check_probs",
    "closed_form_probs",
    "dense_matvec",
    "hvp_rows",
    "load_probs_file",
    "load_warmup_dir",
    "path_curvatures",
    "power_iteration",
    "prepare_save_dir",
    "read_meta",
    "run_warmup",
    "save_probs_file",
    "seeded_init",
    "start_vectors",
    "theta_param_grads",
]
