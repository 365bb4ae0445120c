"""θ-importance sampling (θ-IS) warmup: curvature of each scattering path, path probabilities.

Engine-independent: the warmup only needs ``path_loss(x_hat, x, path_idx) -> scalar``.

* :mod:`.power`: batched power iteration (+ reference-compatible start vectors).
* :mod:`.hvp`: the curvature operator ``A_u`` by double backward ("direct" engine).
* :mod:`.factored`: the same operator through the θ-space Hessian ("factored" engine).
* :mod:`.probs`: the θ-IS probability state (``update_prob``), Eq. (10), checks.
* :mod:`.files`: atomic files, configuration fingerprint, resume, loading a warmup directory.
* :mod:`.distributed`: sharding paths over ``torch.distributed`` ranks.
* :mod:`.curvature`: the values of one path (operators + batched power iteration).
* :mod:`.driver`: :func:`run_warmup`, the whole warmup.
"""

from .checks import check_is_deterministic
from .curvature import path_curvatures, start_vectors
from .driver import WarmupResult, run_warmup
from .factored import BatchHessian, FactoredCurvature, ThetaHessian, batch_theta_hessian
from .files import (
    ProbsFile,
    atomic_save,
    load_probs_file,
    load_warmup_dir,
    prepare_save_dir,
    read_meta,
    save_probs_file,
)
from .hvp import DirectCurvature, PathLoss, WarmupBatch, hvp_rows, theta_param_grads
from .power import (
    PowerIterationResult,
    ReferenceInitStream,
    dense_matvec,
    power_iteration,
    seeded_init,
)
from .probs import AGG_MODES, ThetaISState, aggregate_vals, check_probs, closed_form_probs

__all__ = [
    "AGG_MODES",
    "BatchHessian",
    "DirectCurvature",
    "FactoredCurvature",
    "PathLoss",
    "PowerIterationResult",
    "ProbsFile",
    "ReferenceInitStream",
    "ThetaHessian",
    "ThetaISState",
    "WarmupBatch",
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
