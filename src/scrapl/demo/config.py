"""The demo's settings: one frozen dataclass and three presets (default CPU run, smoke test, paper).

Why the default looks the way it does (measured on a 2-core CPU box, see ``docs/demo.md``):

* **Synth setting: θ_AM ∈ [3.96, 7.92] Hz ("fast"), θ_FM ∈ [2, 4] oct/s ("mid").** The envelope's
  standard deviation is ``0.2 sr / θ_FM`` samples (0.05–0.1 s), so the AM sinusoid (at θ_AM / 2 Hz)
  makes one to four visible lobes: a real amplitude modulation, not just a gain. With the
  "fast" FM range the chirplet is too short for any AM to show (the AM only scales it), and with
  the "slow" FM range it needs the paper's 4 s signals. The ±2048-sample shift (a quarter of the
  signal) is much longer than the chirplet, which is what makes spectrogram losses fail.
* **Signal length 11264 (1.375 s).** The mid-FM chirplet (±2.5 σ ≤ ±2048 samples around its centre)
  plus the ±2048-sample shift fits; the JTFS costs about a third of the paper's 32768.
* **JTFS: J=11, Q1=8, Q2=1, J_fr=1, Q_fr=1, T='global': 45 paths.** Temporal rates from about 1 to
  about 360 Hz (the AM lives at 4-8 Hz), frequential scales up to ±2.8 cycles/octave. Global
  temporal averaging makes the distance blind to the shift. P-Adam keeps moments per path, so a run
  of K steps visits each path about K/P times: with 45 paths, 1600 steps give about 35 visits per
  path (with the paper's 315, a few hundred steps would leave every path near its first visit).
* **log1p distance (``use_rho_log1p``, ε = 1e-3).** Scattering coefficients span decades; on the
  raw coefficients the AM rate was learnt in only some seeds within 800 steps (seed 0: AM 62‰, seed
  1: 225‰, uniform sampling), with log1p seed 1 reached 68‰.
* **Schedule: 1600 steps of batch 8**; the AM rate is learnt late (after 400-800 steps) and 800
  steps were not enough in every seed. Every learning rate decays linearly to 0 over the last 30%
  of the steps (``decay_frac``): without it the AM error still moved by up to ±60‰ between
  evaluations at the end (seed 0, uniform: 41‰ / 23‰ without, 38‰ / 16‰ with).
* **Optimizers.** SCRAPL: vanilla SGD (lr 1e-3) on P-Adam + P-SAGA updates (the seed's recipe); MSS
  and supervised: Adam (lr 1e-3); higher SCRAPL rates (3e-3) lost the AM rate.
* **θ-IS warmup on 16 training examples, up to 20 power iterations (tolerance 1e-3), floor
  ``min_prob_frac = 0.75``** (three quarters of the probability mass spread uniformly; each path
  then gets 0.77-1.98x the uniform probability on seeds 0-2). Over three seeds × three path-draw
  sequences (``draw_seed``) θ-IS with this floor is level with uniform sampling (AM −0.6‰, FM
  +0.2‰; paired p = 0.59 / 0.79). With the floor at 0.5 it trailed on FM (+2.2‰, p = 0.02; AM
  +0.9‰), and every other distribution tried on the same pairs also trailed on at least one
  parameter, or did worse: exact eigenvalues (Arnoldi), 8 or 32 examples, the warmup in θ, the
  curvature over the gradient norm or at the true parameters, an unbiased P-SAGA correction
  (``docs/demo.md``). The floor was chosen on those nine pairs. Without a floor the warmup, made
  on the randomly initialised encoder, can concentrate the draws on a few paths (seed 2: two paths
  at 5-7x uniform) and θ-IS then learnt the AM rate late (seed 2: 165‰ against 44‰ for uniform
  sampling). Power iteration is the paper's and the reference's estimator. It is not accurate
  here: the operators' largest eigenvalues are often close in magnitude, sometimes of opposite
  signs (seed 0, path 35, θ_FM: −49.22 and +48.96), and 6, 15 and 4 of the 90 values of seeds 0-2
  come out more than 10% below the eigenvalue (up to 98%); ``warmup_method="arnoldi"`` gets the
  eigenvalues (736-890 products per seed instead of 1,085-1,162) but did not change θ-IS against
  uniform sampling (floor 0.5: FM +2.7‰ against +2.2‰), so the default stays with the paper's
  estimator.
* **Warmup through the encoder (``warmup_on="encoder"``, the paper's).** ``"theta"`` (curvature in
  the synth parameters at predictions drawn from the prior) is 2.5x cheaper and does not depend
  on the initial weights, but over the same nine pairs (floor 0.5) it trailed uniform sampling by
  about as much (2.3‰ / 2.8‰ against 3.1‰ / 2.3‰).
* **16 warmup examples, not the 32-256 the scrapl-loss README suggests**, for the budget: on 32
  both gaps to uniform sampling fell within noise (floor 0.5: +1.4‰ / +0.8‰ over the nine pairs,
  paired p = 0.49 / 0.15), but that warmup takes 423 s on one core (tolerance 1e-3, the encoder's
  Jacobian shared between paths; 528 s before), which would make the θ-IS run about 710 s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from ..jtfs.config import AveragingArg

__all__ = ["DemoConfig", "RUNS", "WARMUP_INIT", "WARMUP_METHOD", "WARMUP_ON", "PRESETS", "preset"]

RUNS: tuple[str, ...] = ("scrapl_theta_is", "scrapl_uniform", "mss", "supervised")
WARMUP_ON: tuple[str, ...] = ("encoder", "theta")  # what the θ-IS warmup differentiates through
WARMUP_INIT: tuple[str, ...] = ("seeded", "chain")  # the power iteration's start vectors
WARMUP_METHOD: tuple[str, ...] = ("power", "arnoldi")  # the eigenvalue estimator


def _check_unit_fraction(name: str, value: object, *, low_open: bool) -> None:
    """Refuse anything but an int or float in ``(0, 1)`` (``low_open``) or ``[0, 1)``, as a ValueError."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and (0.0 < value < 1.0 if low_open else 0.0 <= value < 1.0)):  # type: ignore[operator]
        raise ValueError(f"{name} must be in {'(' if low_open else '['}0, 1), got {value!r}")


@dataclass(frozen=True)
class DemoConfig:
    """Every setting of a sound-matching comparison.

    Attributes:
        n_samples, sr, am, fm, max_shift: the synthesizer (``am``: "slow"/"fast", ``fm``:
            "slow"/"mid"/"fast", see :data:`scrapl.demo.synth.AM_RANGES` / ``FM_RANGES``).
        J, Q1, Q2, J_fr, Q_fr, T: the JTFS of the SCRAPL runs.
        use_rho_log1p: compare ``log1p(S / 1e-3)`` instead of ``S`` (then ``grad_mult = 1``).
        steps, batch_size: training schedule (the same for every run).
        lr_scrapl: SGD learning rate after P-Adam + P-SAGA. lr_adam: Adam's (MSS, supervised).
        decay_frac: the learning rates decay linearly towards 0 over this last fraction of the steps.
        eval_every: validation period in steps.
        n_train, n_val, n_test: split sizes.
        warmup_batch, warmup_iters: θ-IS warmup batch size and power-iteration steps.
        warmup_tol: the warmup's tolerance: on the relative residual ``‖Ax − λx‖ / |λ|``
            (Arnoldi) or on the relative change of λ (power iteration).
        warmup_init: the power iteration's start vectors: "seeded" (every path from its own
            seeded vector) or "chain" (each path from the previous path's eigenvectors).
        warmup_method: the eigenvalue estimator: "power" (power iteration, the reference's;
            ``warmup_tol`` bounds the change of λ) or "arnoldi" (Krylov subspace; ``warmup_tol``
            bounds the relative residual).
        warmup_on: "encoder" (curvature through the encoder's initial weights, the paper's) or
            "theta" (with respect to the synth parameters, at predictions drawn from the prior).
        min_prob_frac: θ-IS floor: the fraction of the probability mass spread uniformly.
        encoder_channels, hidden, n_fft, hop: the encoder.
        seed: data split, initial weights, batches, reconstruction shifts and path draws.
        draw_seed: seed of the SCRAPL runs' path draws instead of ``seed`` (None: ``seed``), to
            measure how much a result owes to the draws alone (same data, weights and batches).
        runs: which runs to make, in order.
    """

    n_samples: int = 11264
    sr: float = 8192.0
    am: str = "fast"
    fm: str = "mid"
    max_shift: int = 2048
    unit_energy: bool = True
    J: int = 11
    Q1: int = 8
    Q2: int = 1
    J_fr: int = 1
    Q_fr: int = 1
    T: AveragingArg = "global"
    use_rho_log1p: bool = True
    steps: int = 1600
    batch_size: int = 8
    lr_scrapl: float = 1e-3
    lr_adam: float = 1e-3
    decay_frac: float = 0.3
    eval_every: int = 100
    n_train: int = 2048
    n_val: int = 128
    n_test: int = 512
    warmup_batch: int = 16
    warmup_iters: int = 20
    warmup_tol: float = 1e-3
    warmup_init: Literal["seeded", "chain"] = "seeded"
    warmup_method: Literal["power", "arnoldi"] = "power"
    warmup_on: str = "encoder"
    min_prob_frac: float = 0.75
    encoder_channels: tuple[int, ...] = (16, 32, 32, 64)
    hidden: int = 64
    n_fft: int = 512
    hop: int = 88
    seed: int = 0
    draw_seed: int | None = None
    runs: tuple[str, ...] = field(default=RUNS)

    def __post_init__(self) -> None:
        unknown = [r for r in self.runs if r not in RUNS]
        if unknown or not self.runs:
            raise ValueError(f"runs must be a non-empty subset of {RUNS}, got {self.runs!r}")
        for name in ("steps", "batch_size", "eval_every", "warmup_batch", "warmup_iters"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.warmup_on not in WARMUP_ON:
            raise ValueError(f"warmup_on must be 'encoder' or 'theta', got {self.warmup_on!r}")
        _check_unit_fraction("warmup_tol", self.warmup_tol, low_open=True)
        if self.warmup_init not in WARMUP_INIT:
            raise ValueError(f"warmup_init must be 'seeded' or 'chain', got {self.warmup_init!r}")
        if self.warmup_method not in WARMUP_METHOD:
            raise ValueError(f"warmup_method must be 'power' or 'arnoldi', got {self.warmup_method!r}")
        if self.warmup_iters < 2:
            raise ValueError(f"warmup_iters must be >= 2, got {self.warmup_iters!r}")
        if self.draw_seed is not None and (
            isinstance(self.draw_seed, bool) or not isinstance(self.draw_seed, int)
        ):
            raise ValueError(f"draw_seed must be an int or None, got {self.draw_seed!r}")
        _check_unit_fraction("min_prob_frac", self.min_prob_frac, low_open=False)
        if not 0.0 <= self.decay_frac <= 1.0:
            raise ValueError(f"decay_frac must be in [0, 1], got {self.decay_frac!r}")
        for name in ("lr_scrapl", "lr_adam"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable settings."""
        d = asdict(self)
        d["encoder_channels"], d["runs"] = list(self.encoder_channels), list(self.runs)
        return d


PRESETS: dict[str, DemoConfig] = {
    "default": DemoConfig(),
    # a seconds-long smoke run of every stage (tests, `scrapl demo --quick`)
    "quick": DemoConfig(
        n_samples=2816,
        fm="fast",
        max_shift=512,
        J=8,
        Q1=4,
        Q2=1,
        J_fr=1,
        Q_fr=1,
        steps=12,
        batch_size=4,
        eval_every=4,
        n_train=64,
        n_val=16,
        n_test=16,
        warmup_batch=2,
        warmup_iters=3,
        encoder_channels=(4, 8),
        hidden=8,
        hop=32,
    ),
    # the paper's chirplet setting (§4.3): 4 s signals, 315 paths; a GPU-sized job
    "paper": DemoConfig(
        n_samples=32768,
        am="fast",
        fm="slow",
        T=None,
        J=12,
        Q2=2,
        J_fr=3,
        Q_fr=2,
        steps=8000,
        batch_size=32,
        lr_scrapl=1e-4,
        lr_adam=1e-4,
        eval_every=200,
        n_train=4096,
        n_val=512,
        n_test=1024,
        warmup_batch=32,
        warmup_iters=20,
        encoder_channels=(128, 128, 128, 128, 128),
        hidden=64,
        hop=256,
    ),
}


def preset(name: str, **overrides: Any) -> DemoConfig:
    """Return preset ``name`` ("default", "quick" or "paper") with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
