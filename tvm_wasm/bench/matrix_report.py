"""The matrix for people: the terminal table, the Markdown report and the PNG plot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import targets
from .results import Row, RunInfo

HEADLINE_VARIANTS = ("m32", "m32-checked", "m64", "tvm", "tvm-inline", "tvm-bulk", "tvm-mm", "guest", "guest-inline",
                     "native")


def duration(ns: float | None) -> str:
    if ns is None:
        return "-"
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def size_label(n: int) -> str:
    from .matrix import size_label as label

    return label(n)


def _cell(row: Row | None, *, compact: bool = False) -> str:
    if row is None:
        return ""
    if row.status == "infeasible":
        return "infeasible"
    if row.status == "unavailable":
        return "n/a"
    if row.status == "failed":
        return "FAILED"
    text = duration(row.median_ns)
    if row.variant == "m32":
        return text
    ratio = row.speedup_vs_m32
    if ratio is None and row.variant != "m64" and row.speedup_vs_m64 is not None:
        return f"{row.speedup_vs_m64:.2f}× m64" if compact else f"{text} ({row.speedup_vs_m64:.2f}× m64)"
    if ratio is not None:
        return f"{ratio:.2f}×" if compact else f"{text} ({ratio:.2f}×)"
    return text


def groups(rows: Iterable[Row], engine: str = "wasmtime") -> dict[tuple[str, int], dict[str, Row]]:
    """(class, size) -> variant -> row, for one engine (native rows join every engine's table)."""
    out: dict[tuple[str, int], dict[str, Row]] = defaultdict(dict)
    for row in rows:
        if row.engine == engine or (row.variant == "native" and engine == "wasmtime"):
            out[(row.cls, row.size_bytes)][row.variant] = row
    return out


def variants_present(rows: Iterable[Row]) -> list[str]:
    seen = {r.variant for r in rows}
    return [v for v in HEADLINE_VARIANTS if v in seen]


def render_terminal(rows: list[Row], console: Console, info: RunInfo) -> None:
    for engine in sorted({r.engine for r in rows if r.variant != "native"}, key=lambda e: e != "wasmtime"):
        table = Table(
            title=f"tvm-wasm bench ({engine}): m32 = median per kernel run; others = speed vs m32 (above 1 is faster)",
            show_lines=False,
            pad_edge=False,
        )
        variants = variants_present(r for r in rows if r.engine == engine or (r.variant == "native" and engine == "wasmtime"))
        table.add_column("class")
        table.add_column("size", justify="right")
        for v in variants:
            table.add_column(v, justify="right")
        for (cls, size), by_variant in groups(rows, engine).items():
            table.add_row(cls, size_label(size), *[_cell(by_variant.get(v), compact=True) for v in variants])
        console.print(table)
    for line in target_lines(rows):
        console.print(line)


def target_lines(rows: list[Row]) -> list[str]:
    """The issues' targets (``targets.TARGETS``), checked against this run's wasmtime rows."""
    return targets.target_lines(rows, size_label)


def headline_markdown(rows: list[Row], engine: str = "wasmtime") -> str:
    variants = variants_present(r for r in rows if r.engine == engine or (r.variant == "native" and engine == "wasmtime"))
    out = ["| class | size | " + " | ".join(variants) + " |", "|---|---:|" + "---:|" * len(variants)]
    for (cls, size), by in groups(rows, engine).items():
        out.append(f"| {cls} | {size_label(size)} | " + " | ".join(_cell(by.get(v)) for v in variants) + " |")
    return "\n".join(out)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def full_markdown_table(rows: list[Row]) -> str:
    head = ("| variant | class | size | engine | n | warm-up | reps/sample | mean | p50 | p95 | p99 | 95% CI | GiB/s "
            "| vs m32 | vs m64 | best layout (vs m32) | MWU vs m32 (p) | notes |")
    out = [head, "|" + "---|" * 18]
    for r in rows:
        j = r.to_json()
        ci = f"{duration(j['ci95_low_ns'])} – {duration(j['ci95_high_ns'])}" if j["ci95_low_ns"] is not None else "-"
        mw = (f"{j['mann_whitney_u_vs_m32']:.2f} ({j['mann_whitney_p_vs_m32']:.2g})"
              if j["mann_whitney_u_vs_m32"] is not None and r.variant != "m32" else "-")
        notes = j["notes"].replace("|", "/")
        best = (f"{duration(j['best_layout_ns'])} ({_fmt(j['speedup_vs_m32_best_layout'])})"
                if j["best_layout_ns"] is not None else "-")
        out.append(
            f"| {r.variant} | {r.cls} | {size_label(r.size_bytes)} | {r.engine} | {j['samples']} | {j['warmup']} | "
            f"{j['reps_per_sample']} | {duration(j['mean_ns'])} | {duration(j['p50_ns'])} | {duration(j['p95_ns'])} | "
            f"{duration(j['p99_ns'])} | {ci} | {_fmt(j['throughput_gib_per_s'])} | {_fmt(j['speedup_vs_m32'])} | "
            f"{_fmt(j['speedup_vs_m64'])} | {best} | {mw} | {notes} |"
        )
    return "\n".join(out)


METHOD = """\
**Method.** Every kernel is generated from one Python definition per class
(`tvm_wasm/bench/classes.py`) and lowered once per memory model
(`lower_wat.py`, `native_c.py`); only the memory model differs between variants.
A sample is one call that runs the kernel `reps` times inside wasm (or C);
`reps` is calibrated per variant so a call lasts at least {min_sample_ms:g} ms,
which keeps the Python→wasm call overhead (measured per row, column
`call_overhead_pct` in the JSON) under 1% except where a note says otherwise.
Warm-up calls ({warmup} per variant) are discarded. Samples of all variants of a
(class, size) are taken round-robin in a seeded random order, so drift on a
shared machine hits every variant alike. Times are per kernel run. The 95%
confidence interval is Student's t interval of the mean; Mann–Whitney U is
normalised (0.5 = no difference, below 0.5 = this row faster than m32), p from
the normal approximation. Speedups are ratios of medians. A sample during
which the benchmark thread got less than 97% of the wall time (preempted on
this shared machine) is taken again (up to 3 times; the note counts them).
Each wasm variant is compiled in {layouts} code layouts (a few stores to
padding globals at the top of `run` shift the kernel's loops by 0 to about 50
bytes, the same shifts for every variant) and its samples alternate between
them, because alignment alone moves a tight loop by up to 1.8x here: a loop
that straddles a 64-byte fetch line runs slower. "best layout" is the
fastest layout's mean: the kernel with its code well placed. Every call's answer is checked against a NumPy
reference, which m32 must match too: a wrong answer fails the run.
{quick_note}"""


def render_markdown(rows: list[Row], info: RunInfo) -> str:
    cfg = info.config
    quick_note = (
        f"\n**Quick mode:** sizes {', '.join(size_label(s) for s in cfg['sizes'])}, {cfg['samples']} samples, "
        f"{cfg['min_sample_s'] * 1000:g} ms per sample, arenas reset every "
        f"{cfg['arena_limit_bytes'] >> 20} MiB; use the full mode for claims.\n" if cfg.get("quick") else ""
    )
    m = info.machine
    caches = ", ".join(f"{k} {v}" for k, v in (m.get("caches") or {}).items())
    parts = [
        "# tvm-wasm benchmark matrix",
        "",
        f"- date: {info.created}",
        f"- command: `{info.command}`",
        f"- duration: {info.duration_s:.0f} s",
        (f"- machine: {m.get('cpu_model')} ({m.get('architecture')}, family/model/stepping "
         f"{m.get('cpu_family_model_stepping')}, {' '.join(m.get('cpu_simd') or [])}), {m.get('logical_cpus')} logical CPUs, "
         f"{m.get('threads_per_core')} thread(s) per core; {caches}; "
         f"{(m.get('memory_bytes') or 0) / (1 << 30):.0f} GiB RAM; {m.get('os')}; "
         f"hypervisor {m.get('hypervisor') or 'none'}; Python {m.get('python')}"),
        "- packages: " + ", ".join(f"{k} {v}" for k, v in info.packages.items()),
        "",
        "## Engines",
        "",
        *[f"- **{k}**: {v}" for k, v in info.engines.items() if not k.startswith("_")],
        "",
        METHOD.format(min_sample_ms=cfg["min_sample_s"] * 1000, warmup=cfg["warmup"], quick_note=quick_note,
                      layouts=cfg.get("layouts", 1)),
        "",
    ]
    for engine in sorted({r.engine for r in rows if r.variant != "native"}, key=lambda e: e != "wasmtime"):
        parts += [f"## Headline ({engine})", "",
                  ("Median time per kernel run; (×) is the speed relative to m32 of the same engine, a ratio of "
                   "medians (above 1 = faster); where a class has no m32 row, relative to m64. Means, percentiles "
                   "and 95% confidence intervals are in the full table below and in the JSON."),
                  "", headline_markdown(rows, engine), ""]
    parts += ["## Targets", "", *[f"- {line.removeprefix('targets: ')}" for line in target_lines(rows)], "",
              "## Every row", "", full_markdown_table(rows), ""]
    return "\n".join(parts)


COLOURS = {
    "m32": "#4caf50", "m32-checked": "#8bc34a", "m64": "#f44336", "tvm": "#ff9800", "tvm-bulk": "#9c27b0",
    "tvm-mm": "#2196f3", "guest": "#00bcd4", "native": "#607d8b",
}


def render_png(rows: list[Row], path: Path, engine: str = "wasmtime") -> None:
    """Speed relative to m32 (log scale) per class and size; beyond_4gib relative to m64, spill_driven in ms per cycle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = groups(rows, engine)
    classes = list(dict.fromkeys(cls for cls, _ in grouped))
    if not classes:
        return
    cols = 2
    nrows = -(-len(classes) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(14, 3.2 * nrows), squeeze=False)
    for ax, cls in zip(axes.flat, classes, strict=False):
        sizes = [s for c, s in grouped if c == cls]
        variants = [v for v in HEADLINE_VARIANTS if any(v in grouped[(cls, s)] for s in sizes)]
        width = 0.8 / max(1, len(variants))
        special = cls in ("spill_driven", "beyond_4gib")
        for k, v in enumerate(variants):
            xs, ys = [], []
            for i, s in enumerate(sizes):
                r = grouped[(cls, s)].get(v)
                if r is None or not r.measured:
                    continue
                if cls == "spill_driven":
                    value = (r.mean_ns or 0) / 1e6
                elif cls == "beyond_4gib":
                    value = r.speedup_vs_m64
                else:
                    value = r.speedup_vs_m32
                if value:
                    xs.append(i + (k - (len(variants) - 1) / 2) * width)
                    ys.append(value)
            ax.bar(xs, ys, width=width, color=COLOURS.get(v, "#999999"), label=v)
        ax.set_xticks(range(len(sizes)), [size_label(s) for s in sizes])
        ax.set_xlim(-0.6, max(len(sizes), 2) - 0.4)
        ax.set_yscale("log")
        if cls == "spill_driven":
            ax.set_ylabel("ms per cycle")
        else:
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_ylabel("speed vs m64" if cls == "beyond_4gib" else "speed vs m32")
        ax.set_title(cls + (" (lower is better)" if cls == "spill_driven" else ""))
        del special
    for ax in list(axes.flat)[len(classes):]:
        ax.axis("off")
    handles, labels = [], []
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=False):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, loc="upper center", ncol=len(labels))
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
