"""Markdown tables and the step-time plot for ``benchmarks/run.py``."""

from __future__ import annotations

import math
from pathlib import Path

__all__ = [
    "step_table",
    "sweep_table",
    "low_memory_table",
    "full_table",
    "optim_table",
    "warmup_table",
    "machine_table",
    "targets_table",
    "bounds_text",
    "plot_sweep",
]


def _ms(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def _mib(v: int | None) -> str:
    return "n/a" if v is None else f"{v / 2**20:,.0f}"


def _peak(p) -> str:
    """``tensors (RSS)`` in MiB."""
    if p is None:
        return "n/a"
    return f"{_mib(p.tensors)} ({_mib(p.rss)})"


def _x(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}x" if v < 100 else f"{v:.0f}x"


def _e(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1e}"


def machine_table(info: dict) -> list[str]:
    v = info["versions"]
    rows = [
        ("date", info["date"]),
        ("CPU", f"{info['cpu']}, {info['cores']} cores"),
        ("GPU", info["gpu"]),
        ("device benchmarked", info["device"]),
        ("torch intra-op threads", info["torch_threads"]),
        (
            "load average (1/5/15 min) at start / end",
            f"{info['load_average_start']} / {info.get('load_average_end', 'n/a')}",
        ),
        ("Python / OS", f"{info['python']} / {info['os']}"),
        ("versions", ", ".join(f"{k} {val}" for k, val in v.items())),
        ("peer", info["reference"]),
        ("scrapl commit", info["commit"]),
        ("peak memory method", info.get("memory_method", "n/a")),
        ("wall time of this run", info.get("wall", "n/a")),
    ]
    return ["| | |", "|---|---|", *(f"| {k} | {val} |" for k, val in rows)]


def step_table(res) -> list[str]:
    has_ref = any(r.ref_ms is not None for r in res.rows)
    head = (
        "| path | key (n2, n_fr) | j2 | n1_max | ours ms (first call) | FFT floor ms | "
        "scrapl-loss 0.1.0 ms | MSS ms | ref / ours | ref / floor | MSS / ours | "
        "aten ops: ours / ref / MSS | "
        "peak MiB, tensors (RSS): ours / ref | loss rel. err | grad rel. err |"
    )
    out = [head, "|" + "---|" * 15]
    for r in res.rows:
        ratio_ref = r.ref_ms / r.ours_ms if has_ref and r.ref_ms else None
        ratio_floor = r.ref_ms / r.floor_ms if has_ref and r.ref_ms and r.floor_ms else None
        out.append(
            f"| {r.path} | {r.key} | {r.j2} | {r.n1_max} | {_ms(r.ours_ms)} ({_ms(r.ours_first_ms)}) "
            f"| {_ms(r.floor_ms)} | {_ms(r.ref_ms)} | {_ms(r.mss_ms)} | {_x(ratio_ref)} "
            f"| {_x(ratio_floor)} | {_x(r.mss_ms / r.ours_ms)} | {_ops(r)} "
            f"| {_peak(r.ours_peak)} / {_peak(r.ref_peak)} | {_e(r.loss_err)} | {_e(r.grad_err)} |"
        )
    s = res.summary
    out.append(
        f"| **median over paths** | | | | **{_ms(s['ours_median_ms'])}** | "
        f"**{_ms(s.get('floor_median_ms'))}** | "
        f"**{_ms(s.get('ref_median_ms'))}** | **{_ms(s['mss_median_ms'])}** | "
        f"**{_x(s.get('ref_over_ours'))}** | **{_x(s.get('ref_over_floor'))}** | "
        f"**{_x(s['mss_over_ours'])}** | max {s.get('ops_ours_max', 'n/a')} / "
        f"{s.get('ops_ref_min', 'n/a')}-{s.get('ops_ref_max', 'n/a')} / {s.get('ops_mss', 'n/a')} | "
        f"tensors: max {_mib(s.get('ours_peak_max'))} / median {_mib(s.get('ref_peak_median'))} | "
        f"max {_e(s.get('max_loss_err'))} | max {_e(s.get('max_grad_err'))} |"
    )
    reps = res.rows[0]
    out.append("")
    out.append(
        f"Batch {res.batch}, 1 channel; {reps.n_ours} timed steps per path for ours, MSS and the "
        f"FFT floor, {reps.n_ref} for the reference (median). MSS peak memory: "
        f"{_peak(res.mss_peak)} MiB. Load average before / after: {res.load_before} / "
        f"{res.load_after}. FFT floor: only the nine real FFTs per first-order filter that an "
        "exact step needs (`benchmarks/floor.py`), timed in the same rounds; `ref / floor` is the "
        "largest speed-up an implementation of this transform with these FFTs could show. "
        "aten ops: working aten operators dispatched by one training step (forward of `x` and of "
        "the target, backward; views and bare allocations not counted, `benchmarks/opcount.py`), "
        "each at least one kernel launch on a GPU."
    )
    if "ops_all_max" in s:
        out.append(
            f"Over all {s['ops_all_n_paths']} paths of this configuration a step dispatches "
            f"{s['ops_all_min']}-{s['ops_all_max']} operators (path {s['ops_all_max_path']} the most; "
            f"counted on the `meta` device), with {s['ops_all_syncs']} host synchronisations; "
            f"the MSS step {s['ops_all_mss']}."
        )
    return out


def _ops(r) -> str:
    """``ours / ref / MSS`` operator counts of a step row (``n/a`` where not counted)."""
    values = [r.ops_ours, r.ops_ref, r.ops_mss]
    return " / ".join("n/a" if v is None else str(v) for v in values)


def low_memory_table(res) -> list[str]:
    """``SCRAPLLoss(low_memory=True)`` on the same paths and inputs (empty if not measured)."""
    if not res.rows or res.rows[0].low_ms is None:
        return []
    out = [
        "| path | j2 | low-memory ms | default ms | low / default | scrapl-loss 0.1.0 ms | "
        "ref / low | peak MiB, tensors (RSS): low / default / ref | low / ref (tensors) | "
        "loss rel. err | grad rel. err |",
        "|" + "---|" * 11,
    ]
    for r in res.rows:
        low_ref = r.low_peak.tensors / r.ref_peak.tensors if r.low_peak and r.ref_peak else None
        out.append(
            f"| {r.path} | {r.j2} | {_ms(r.low_ms)} | {_ms(r.ours_ms)} | {r.low_ms / r.ours_ms:.2f} "
            f"| {_ms(r.ref_ms)} | {_x(r.ref_ms / r.low_ms if r.ref_ms else None)} "
            f"| {_peak(r.low_peak)} / {_peak(r.ours_peak)} / {_peak(r.ref_peak)} "
            f"| {'n/a' if low_ref is None else f'{low_ref:.2f}'} "
            f"| {_e(r.low_loss_err)} | {_e(r.low_grad_err)} |"
        )
    s = res.summary
    median_ratio = s.get("low_over_ref_peak_median")
    out.append(
        f"| **median** | | **{_ms(s['low_median_ms'])}** | **{_ms(s['ours_median_ms'])}** | "
        f"**{s['low_over_ours']:.2f}** | **{_ms(s.get('ref_median_ms'))}** | "
        f"**{_x(s.get('ref_over_low'))}** | | "
        f"**{'n/a' if median_ratio is None else f'{median_ratio:.2f}'}** | | |"
    )
    return out


def sweep_table(results) -> list[str]:
    out = [
        "| N | paths | ours median ms (min-max) | scrapl-loss 0.1.0 median ms | MSS ms | "
        "ref / ours | MSS / ours | max loss rel. err | max grad rel. err |",
        "|" + "---|" * 9,
    ]
    for res in results:
        s, ours = res.summary, [r.ours_ms for r in res.rows]
        out.append(
            f"| {res.setup.shape} | {len(res.rows)} | {_ms(s['ours_median_ms'])} "
            f"({_ms(min(ours))}-{_ms(max(ours))}) | {_ms(s.get('ref_median_ms'))} | "
            f"{_ms(s['mss_median_ms'])} | {_x(s.get('ref_over_ours'))} | {_x(s['mss_over_ours'])} | "
            f"{_e(s.get('max_loss_err'))} | {_e(s.get('max_grad_err'))} |"
        )
    return out


def full_table(rows) -> list[str]:
    out = [
        "| configuration | batch | paths | ours ms | vendored kymatio ms | kymatio / ours | "
        "peak MiB, tensors (RSS): ours / kymatio | coef. rel. err | grad rel. err |",
        "|" + "---|" * 9,
    ]
    for r in rows:
        ratio = r.ref_ms / r.ours_ms if r.ref_ms else None
        out.append(
            f"| {r.setup.name} ({r.setup.describe()}) | {r.batch} | {r.n_paths} | "
            f"{_ms(r.ours_ms)} | {_ms(r.ref_ms)} | {_x(ratio)} | {_peak(r.ours_peak)} / "
            f"{_peak(r.ref_peak)} | {_e(r.coef_err)} | {_e(r.grad_err)} |"
        )
    if rows:
        out += ["", f"Timed steps: ours {rows[0].n_ours}, kymatio {rows[0].n_ref} (median)."]
    return out


def optim_table(res) -> list[str]:
    names = {
        "reference": "scrapl-loss 0.1.0 `grad_hook`",
        "paper": "ours, `compat='paper'`",
        "compat": "ours, `compat='reference'`",
    }
    d = res.distinct
    out = [
        f"| implementation | ms per step, 1 visited path | ms per step, {d} visited paths | "
        f"{d} / 1 | reference / this ({d} paths) | state MiB after 1 / {d} / all paths |",
        "|" + "---|" * 6,
    ]
    for key, label in names.items():
        a, b = res.after_1[key], res.after_many[key]
        mem = res.state_bytes.get(key)
        mem_s = " / ".join(_mib(m) for m in mem) if mem else "as `compat='paper'`"
        out.append(
            f"| {label} | {a:.2f} | {b:.2f} | {b / a:.2f} | "
            f"{res.after_many['reference'] / b:.1f}x | {mem_s} |"
        )
    out += [
        "",
        f"The seed's toy model, {res.n_weights:,} weights (5 tensors), P = {res.n_paths}; "
        f"hooks of one backward pass, {res.steps} timed steps per setting (median). Max "
        f"relative error of ours (`compat='reference'`) against the reference's hook outputs "
        f"over all steps: {res.max_rel_err:.1e}.",
    ]
    return out


def warmup_table(rows) -> list[str]:
    out = [
        "| nθ | paths | scrapl-loss 0.1.0 ms/path | ours factored ms/path | ours direct ms/path | "
        "ref / factored | ref / direct | max rel. diff of values (factored / direct) |",
        "|" + "---|" * 8,
    ]
    for r in rows:
        m = r.ms_per_path
        out.append(
            f"| {r.n_theta} | {r.n_paths} | {_ms(m['reference'])} | {_ms(m['ours_factored'])} "
            f"| {_ms(m['ours_direct'])} | {_x(m['reference'] / m['ours_factored'])} | "
            f"{_x(m['reference'] / m['ours_direct'])} | {_e(r.max_rel_diff['ours_factored'])}"
            f" / {_e(r.max_rel_diff['ours_direct'])} |"
        )
    if rows:
        out += [
            "",
            f"At most {rows[0].n_iter} power iterations (tolerance 1e-4), median of "
            f"{rows[0].runs} runs of each method, the methods alternating.",
        ]
    return out


def targets_table(paper, full) -> list[str]:
    """The issue's targets, measured on the paper configuration (CPU, batch 4)."""
    s = paper.summary
    rows = []

    def add(name, value, ok):
        rows.append(f"| {name} | {value} | {'met' if ok else '**not met**'} |")

    if "ref_over_ours" in s:
        bound = ""
        if "ref_over_floor" in s:
            bound = f"; the FFTs an exact step needs, alone: {s['ref_over_floor']:.1f}x"
        add(
            "median SCRAPL step >= 10x faster than scrapl-loss 0.1.0 (same paths)",
            f"{s['ref_over_ours']:.1f}x (per path: >= {s['ref_over_ours_per_path_min']:.1f}x){bound}",
            s["ref_over_ours"] >= 10,
        )
    bound = ""
    if "floor_over_mss" in s:
        bound = f"; those FFTs alone take {s['floor_over_mss']:.2f} of the MSS step"
    add(
        "median SCRAPL step no slower than auraloss MSS",
        f"MSS / ours = {s['mss_over_ours']:.2f}{bound}",
        s["mss_over_ours"] >= 1,
    )
    add(
        "slowest path <= 3x the MSS step",
        f"{s['slowest_over_mss']:.2f}x (path {s['slowest_path']})",
        s["slowest_over_mss"] <= 3,
    )
    if "ours_over_ref_peak_max" in s:
        add(
            "peak memory of a step <= 1/5 of the reference's (live tensors)",
            f"ours / reference: median {s['ours_over_ref_peak_median']:.2f}, "
            f"max {s['ours_over_ref_peak_max']:.2f} over the paths",
            s["ours_over_ref_peak_max"] <= 0.2,
        )
    if "low_over_ref_peak_max" in s:
        add(
            "the same with `low_memory=True` (chunked, checkpointed; "
            f"{s['low_over_ours']:.2f}x the default step time)",
            f"low-memory / reference: median {s['low_over_ref_peak_median']:.2f}, "
            f"max {s['low_over_ref_peak_max']:.2f} over the paths",
            s["low_over_ref_peak_max"] <= 0.2,
        )
    if full is not None and full.ref_ms:
        ratio = full.ref_ms / full.ours_ms
        add("full JTFS >= 5x faster than the vendored kymatio", f"{ratio:.1f}x", ratio >= 5)
    if "ops_all_max" in s:
        worst, mss = s["ops_all_max"], s["ops_all_mss"]
        add(
            "every path's step dispatches <= 2x the aten operators of the MSS step (target: <= MSS)",
            f"at most {worst} (path {s['ops_all_max_path']}) against {mss} for MSS: "
            f"{worst / mss:.2f}x, over all {s['ops_all_n_paths']} paths",
            worst <= 2 * mss,
        )
        add(
            "no host synchronisation in a step whose path is given (CUDA-graph capturable)",
            f"{s['ops_all_syncs']} in the {s['ops_all_n_paths']} counted steps",
            s["ops_all_syncs"] == 0,
        )
    return ["| target | measured | |", "|---|---|---|", *rows]


def bounds_text(paper) -> list[str]:
    """What bounds the two speed targets, in numbers of the same run: the FFT floor
    (:mod:`benchmarks.floor`) against the reference's step and the MSS step (paper configuration)."""
    s = paper.summary
    if "floor_median_ms" not in s or "ref_median_ms" not in s:
        return []
    floor, ours = s["floor_median_ms"], s["ours_median_ms"]
    mss, ten = s["mss_median_ms"], s["ref_median_ms"] / 10
    if floor >= ten:
        ten_text = "so no implementation of this transform with these FFTs can reach 10x"
    else:
        ten_text = f"so 10x would leave {_ms(ten - floor)} ms for the rest of the step"
    return [
        f"What bounds the two speed targets, from this run (medians over the paths): the FFTs an "
        f"exact step needs (nine real FFTs of length `Np / 2**j1` per first-order filter, "
        f"`benchmarks/floor.py`) take {_ms(floor)} ms, {s['floor_over_ours']:.0%} of our {_ms(ours)} ms "
        f"step. Ten times faster than the reference would be {_ms(ten)} ms; the FFTs alone are "
        f"{s['ref_over_floor']:.1f}x faster than the reference's step, {ten_text}. Matching MSS "
        f"({_ms(mss)} ms) would leave {_ms(mss - floor)} ms for the rest of the step (reading and "
        f"weighting the bands, the moduli and their backward, the second order, the frequential "
        f"stage), which takes {_ms(ours - floor)} ms now. Where that time goes: `PROFILE.md`.",
    ]


def plot_sweep(results, path: Path) -> None:
    """Log-log plot of the step time against signal length for the three losses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    N = [r.setup.shape for r in results]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ours = [r.summary["ours_median_ms"] for r in results]
    lo = [min(x.ours_ms for x in r.rows) for r in results]
    hi = [max(x.ours_ms for x in r.rows) for r in results]
    ax.fill_between(N, lo, hi, color="C0", alpha=0.2, label="SCRAPL (ours), min-max over paths")
    ax.plot(N, ours, "o-", color="C0", label="SCRAPL (ours), median over paths")
    ref = [r.summary.get("ref_median_ms") for r in results]
    if any(v is not None for v in ref):
        pts = [(n, v) for n, v in zip(N, ref, strict=True) if v is not None]
        ax.plot(*zip(*pts, strict=True), "s-", color="C3", label="scrapl-loss 0.1.0, median")
    ax.plot(
        N,
        [r.summary["mss_median_ms"] for r in results],
        "^-",
        color="C2",
        label="auraloss MultiResolutionSTFTLoss",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("signal length N (samples)")
    ax.set_ylabel("forward + backward step (ms)")
    b = results[0]
    ax.set_title(
        f"One training step, batch {b.batch}, J={b.setup.J} Q1={b.setup.Q1} "
        f"Q2={b.setup.Q2} J_fr={b.setup.J_fr} Q_fr={b.setup.Q_fr} T={b.setup.T} F={b.setup.F}",
        fontsize=8,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
