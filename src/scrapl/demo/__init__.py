"""End-to-end unsupervised sound matching with SCRAPL (the paper's §4.3 chirplet task, CPU-sized).

Modules: :mod:`.synth` (the chirplet synthesizer), :mod:`.encoder` (log-frequency spectrogram + CNN),
:mod:`.data` (the split), :mod:`.train` (the training loop and objectives), :mod:`.config` (settings
and presets), :mod:`.figures` and :mod:`.run` (orchestration, files, the results table). Run it with
``scrapl demo`` or ``python -m scrapl demo``. The figures need the ``demo`` extra (matplotlib,
auraloss).
"""

from .config import PRESETS, RUNS, DemoConfig, preset
from .data import DemoData, Split, make_data
from .encoder import Encoder, LogFreqSpectrogram
from .run import DemoResult, format_table, run_demo
from .synth import AM_RANGES, FM_RANGES, ChirpletSynth, ThetaRange, log_uniform, shift_signals
from .train import RunHistory, evaluate, train_run

__all__ = [
    "AM_RANGES",
    "FM_RANGES",
    "PRESETS",
    "RUNS",
    "ChirpletSynth",
    "DemoConfig",
    "DemoData",
    "DemoResult",
    "Encoder",
    "LogFreqSpectrogram",
    "RunHistory",
    "Split",
    "ThetaRange",
    "evaluate",
    "format_table",
    "log_uniform",
    "make_data",
    "preset",
    "run_demo",
    "shift_signals",
    "train_run",
]
