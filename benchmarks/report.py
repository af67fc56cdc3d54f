"""Write a benchmark's ``report.md`` and a self-contained ``report.html`` (PNG plots inlined as base64).

Plots use matplotlib's Agg backend (no display needed): latency distribution per
bundle, accuracy and agreement float vs quantized, size vs latency, energy per
inference (estimates labelled), confusion matrices, streaming vs window.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Callable

from edge.bundle.search_report import SEARCH_HEADER, SearchReport, choice_line, search_table
from edge.errors import HybridEdgeError


def _label(r: dict[str, Any]) -> str:
    return f"{r.get('name') or Path(r['path']).name} {r['precision']} {r['mode']} {r['threads']}t"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise HybridEdgeError("the HTML report needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _readable_axis(ax: Any, which: str, values: list[float]) -> None:
    """Log scale only when values span more than 5x; plain decimal tick labels either way.

    Two bundles 3 % apart on a log axis get ticks like 1.06e-1 ... 1.09e-1; a
    linear axis with some margin reads at a glance.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    lo, hi = min(values), max(values)
    axis = ax.xaxis if which == "x" else ax.yaxis
    if lo > 0 and hi / lo > 5:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        axis.set_minor_formatter(NullFormatter())
    else:
        pad = max((hi - lo) * 0.25, hi * 0.05, 1e-6)
        (ax.set_xlim if which == "x" else ax.set_ylim)(max(0.0, lo - pad), hi + pad)
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.4g}"))


def plot_latency(results: list[dict[str, Any]]) -> Any:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(results)))
    ax.boxplot([r["latency_samples_ms"] for r in results], vert=False, showfliers=True, whis=(1, 99))
    ax.set_yticks(range(1, len(results) + 1), [_label(r) for r in results])
    ax.set_xlabel("latency per step, ms (whiskers p1-p99)")
    samples = [v for r in results for v in r["latency_samples_ms"]]
    _readable_axis(ax, "x", [float(min(samples)), float(max(samples))])
    ax.set_title("Latency distribution per bundle")
    return fig


def plot_accuracy(results: list[dict[str, Any]]) -> Any:
    plt = _pyplot()
    rows = [r for r in results if "accuracy" in r]
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(rows)))
    y = range(len(rows))
    ax.barh([v + 0.2 for v in y], [r["accuracy"] for r in rows], height=0.4, label="accuracy")
    ax.barh([v - 0.2 for v in y], [r.get("agreement_with_float", 0.0) for r in rows], height=0.4, label="top-1 agreement with float32")
    ax.set_yticks(list(y), [_label(r) for r in rows])
    ax.set_xlim(0, 1.05)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    ax.set_title("Accuracy and agreement, float vs quantized")
    return fig


def plot_size_latency(results: list[dict[str, Any]]) -> Any:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        ax.scatter(r["size_bytes"] / 1024, r["latency_ms"]["p50"], s=40)
        ax.annotate(_label(r), (r["size_bytes"] / 1024, r["latency_ms"]["p50"]), fontsize=7, xytext=(4, 2), textcoords="offset points")
    _readable_axis(ax, "x", [r["size_bytes"] / 1024 for r in results])
    _readable_axis(ax, "y", [r["latency_ms"]["p50"] for r in results])
    ax.set_xlabel("model size, KB")
    ax.set_ylabel("p50 latency, ms")
    ax.set_title("Size vs latency")
    return fig


def plot_energy(results: list[dict[str, Any]]) -> Any:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(results)))
    ax.barh(range(len(results)), [r["energy_mj_per_inference"] for r in results],
            color=["tab:orange" if r["energy_estimated"] else "tab:green" for r in results])
    ax.set_yticks(range(len(results)), [_label(r) for r in results])
    sources = sorted({r["energy_source"] for r in results})
    ax.set_xlabel("mJ per inference (" + ", ".join(sources) + ")")
    estimated = any(r["energy_estimated"] for r in results)
    ax.set_title("Energy per inference" + (" — ESTIMATED (orange), not measured" if estimated else ""))
    return fig


def plot_confusions(results: list[dict[str, Any]], labels: list[str] | None = None) -> Any:
    plt = _pyplot()
    rows = [r for r in results if "confusion" in r]
    cols = min(3, len(rows))
    nrows = (len(rows) + cols - 1) // cols
    size = 4.2 if not labels else 4.2 + 0.12 * max(len(n) for n in labels)
    fig, axes = plt.subplots(nrows, cols, figsize=(size * cols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows):
        ax.axis("on")
        cm = r["confusion"]
        ax.imshow(cm, cmap="Blues")
        for i, row in enumerate(cm):
            for j, v in enumerate(row):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        ax.set_title(f"{_label(r)}\nacc {r['accuracy']:.3f}", fontsize=8)
        if labels and len(labels) == len(cm):
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.tight_layout()
    return fig


def plot_streaming_vs_window(pairs: list[dict[str, Any]]) -> Any:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.6 * len(pairs)))
    labels = [f"{p['precision']} T={p['window_frames']} {p['threads']}t" for p in pairs]
    y = range(len(pairs))
    ax.barh([v + 0.2 for v in y], [p["window_p50_ms"] for p in pairs], height=0.4, label="window recompute per frame")
    ax.barh([v - 0.2 for v in y], [p["streaming_p50_ms"] for p in pairs], height=0.4, label="streaming step per frame")
    for v, p in zip(y, pairs):
        ax.text(p["window_p50_ms"], v + 0.2, f" {p['speedup']:.1f}x", va="center", fontsize=8)
    ax.set_yticks(list(y), labels)
    ax.set_xlabel("p50 ms per frame")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    ax.set_title("Streaming step model vs re-running the whole window")
    return fig


def figures(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """(title, figure builder) for every plot this document has data for."""
    res = doc["results"]
    out: list[tuple[str, Callable[[], Any]]] = [("Latency distribution", lambda: plot_latency(res))]
    if any("accuracy" in r for r in res):
        out.append(("Accuracy, float vs quantized", lambda: plot_accuracy(res)))
    out.append(("Size vs latency", lambda: plot_size_latency(res)))
    out.append(("Energy per inference", lambda: plot_energy(res)))
    if any("confusion" in r for r in res):
        labels = (doc.get("data") or {}).get("labels")
        out.append(("Confusion matrices", lambda: plot_confusions(res, labels)))
    if doc.get("streaming_vs_window"):
        out.append(("Streaming vs window", lambda: plot_streaming_vs_window(doc["streaming_vs_window"])))
    return [(title, build()) for title, build in out]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def tables(doc: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, header, rows) for the report's tables."""
    m = doc["machine"]
    out = [("Machine", ["field", "value"], [
        ["CPU", m.get("cpu_model")], ["cores", m.get("cores")], ["board", m.get("board_model")],
        ["governor", m.get("governor")], ["throttling", m.get("throttling")],
        ["load average (1/5/15 min) before", " / ".join(f"{v:.2f}" for v in m["load_average"])],
        ["load average after", " / ".join(f"{v:.2f}" for v in doc["load_average_after"])],
        ["versions", ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())],
    ])]
    rows = []
    for r in doc["results"]:
        lat, sp = r["latency_ms"], r["p50_spread_ms"]
        rows.append([_label(r), r["size_bytes"] / 1024, lat["p50"], lat["p90"], lat["p99"], lat["max"],
                     f"{sp['min']:.3f}/{sp['median']:.3f}/{sp['max']:.3f}", r["fps"], r["init_ms"], r["first_inference_ms"],
                     r["peak_rss_mb"], f"{r['energy_mj_per_inference']:.4f} ({r['energy_source']})", r["delegate"]["applied"],
                     r.get("accuracy"), r.get("macro_f1"), r.get("agreement_with_float")])
    out.append(("Results (per step, warm-up excluded)", ["bundle", "KB", "p50 ms", "p90 ms", "p99 ms", "max ms",
                "p50 min/med/max over repeats", "fps", "init ms", "first ms", "peak RSS MB", "mJ/inference",
                "delegate", "accuracy", "macro-F1", "agree"], rows))
    prec = [[f"{p['name']} {p['precision']} {p['mode']} {p['threads']}t", p["p50_ms"], p.get("speedup_vs_float32"),
             p.get("size_ratio_vs_float32"), p.get("accuracy"), p.get("agreement_with_float")] for p in doc["precisions"]]
    out.append(("Quantized vs float32", ["bundle", "p50 ms", "speedup vs float32", "size vs float32", "accuracy", "agree"], prec))
    checked = [r for r in doc["results"] if r.get("verify")]
    if checked:
        out.append(("Conversion check against the Keras model (the bundle's verify.json)",
                    ["bundle", "test sequences", "agreement with Keras (where they differ: Keras's top-class lead)", "long-stream steps",
                     "long-stream agreement",
                     "long-stream accuracy Keras / bundle", "state drift, first / last 10 % (mean |diff|)"],
                    [[_label(r), r["verify"]["sequences"], _agreement(r["verify"]), r["verify"]["long_stream_steps"],
                      r["verify"]["long_stream_agreement"],
                      _pair(r["verify"]["long_stream_accuracy_keras"], r["verify"]["long_stream_accuracy_converted"]),
                      "; ".join(f"{n} {d['first_10pct']:.4f} / {d['last_10pct']:.4f}" for n, d in r["verify"]["state_drift"].items()) or "-"]
                     for r in checked]))
    out += search_tables(doc)
    if doc.get("streaming_vs_window"):
        out.append(("Streaming vs window recompute", ["precision", "T", "threads", "streaming ms/frame", "window ms/frame", "speedup", "invoke-only speedup", "target >= 0.9*T"],
                    [[p["precision"], p["window_frames"], p["threads"], p["streaming_p50_ms"], p["window_p50_ms"], p["speedup"], p.get("invoke_only_speedup"),
                      f"{p['target_speedup']:.1f} ({'met' if p['meets_target'] else 'MISSED'})"] for p in doc["streaming_vs_window"]]))
    if doc.get("comparison"):
        c = doc["comparison"]
        out.append((f"Against reference {c['reference_board']} ({c['regressions']} regressions)",
                    ["bundle", "threads", "p50 ms", "ref p50 ms", "ratio", "status"],
                    [[f"{r['name']} {r['precision']} {r['mode']}", r["threads"], r["p50_ms"], r.get("ref_p50_ms"), r.get("latency_ratio"),
                      r["status"] + (": " + "; ".join(r.get("problems", [])) if r.get("problems") else "")] for r in c["rows"]]))
    return out


def search_tables(doc: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """One table per searched bundle (its ``search.json``): every precision tried, and what was chosen and why."""
    out, seen = [], set()
    for r in doc["results"]:
        if not r.get("search") or r["path"] in seen:
            continue
        seen.add(r["path"])
        report = SearchReport.from_json(r["search"])
        out.append((f"Precision search for {r['name']} ({r['path']}): {choice_line(report)}", SEARCH_HEADER, search_table(report)))
    return out


def _agreement(verify: dict[str, Any]) -> str:
    """``0.988 (10 differ, lead up to 0.310)``: agreement with Keras, and how sure Keras was where they differ."""
    d = verify.get("disagreements")
    text = f"{verify['agreement_with_keras']:.3f}"
    return f"{text} ({d['count']} differ, lead up to {d['reference_leads'][0]:.3f})" if d and d["count"] else text


def _pair(a: Any, b: Any) -> str:
    return "-" if a is None or b is None else f"{a:.3f} / {b:.3f}"


def _speed(speedup: float) -> str:
    if 0.9 <= speedup <= 1.1:
        return "as fast"
    return f"{speedup:.1f}x faster" if speedup > 1 else f"{1 / speedup:.1f}x slower"


def summary_sentence(doc: dict[str, Any]) -> str:
    """One paragraph: each quantized bundle's size, speed and agreement against its float32 twin."""
    parts = []
    items = (doc.get("data") or {}).get("items")
    for p in doc["precisions"]:
        if p["precision"] == "float32" or p.get("size_ratio_vs_float32") is None:
            continue
        r = next(r for r in doc["results"] if r["path"] == p["path"] and r["threads"] == p["threads"])
        base = p["p50_ms"] * p["speedup_vs_float32"]
        text = (f"{p['precision']} is {p['size_ratio_vs_float32']:.2f}x the size of float32, {_speed(p['speedup_vs_float32'])} "
                f"(p50 {p['p50_ms']:.3f} vs {base:.3f} ms per frame, {p['threads']} thread(s))")
        if p.get("agreement_with_float") is not None:
            noun = "clips" if r["mode"] in ("streaming", "window") else "items"
            split = doc["config"].get("split", "test")
            text += (f", and agrees with it on {100 * p['agreement_with_float']:.1f} % of "
                     f"{f'the {items} {split} {noun}' if items else 'the ' + noun}")
            if p.get("accuracy") is not None:
                f32 = next((q for q in doc["precisions"] if q["precision"] == "float32" and q["threads"] == p["threads"]), None)
                if f32 is not None and f32.get("accuracy") is not None:
                    text += f" (accuracy {p['accuracy']:.3f} vs {f32['accuracy']:.3f})"
        stream = (r.get("verify") or {}).get("long_stream_agreement")
        if stream is not None:
            text += (f"; over a long stream with no state reset ({r['verify']['long_stream_steps']} frames) it agrees with "
                     f"the float Keras model on {100 * stream:.1f} % of frames")
        parts.append(text + ".")
    return " ".join(parts) or f"{len(doc['results'])} bundle(s) measured; no quantized bundle with a float32 twin to compare."


def to_markdown(doc: dict[str, Any]) -> str:
    lines = [f"# {doc.get('title', 'Benchmark report')} ({doc['started_utc']})", "", summary_sentence(doc), "",
             f"Data: {doc['data']['source'] if doc.get('data') else 'seeded random inputs'}. "
             f"Run rules: {doc['config']['warmup']} warm-up steps excluded; each of {doc['config']['repeats']} repeats "
             f"runs at least {doc['config']['runs']} steps and {doc['config']['min_seconds']} s.", ""]
    for title, header, rows in tables(doc):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


def to_html(doc: dict[str, Any]) -> str:
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>hybrid-edge benchmark</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child{text-align:left}</style></head><body>",
             f"<h1>{html.escape(doc.get('title', 'Benchmark report'))} ({html.escape(doc['started_utc'])})</h1>",
             f"<p style='font-size:16px;max-width:60em'>{html.escape(summary_sentence(doc))}</p>",
             f"<p>Data: {html.escape(doc['data']['source'] if doc.get('data') else 'seeded random inputs')}. "
             f"Run rules: {doc['config']['warmup']} warm-up steps excluded; each of {doc['config']['repeats']} repeats runs at least "
             f"{doc['config']['runs']} steps and {doc['config']['min_seconds']} s.</p>"]
    for title, header, rows in tables(doc):
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows]
        parts.append("</table>")
    for title, fig in figures(doc):
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{_png(fig)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(doc: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "report.md", out / "report.html"
    md.write_text(to_markdown(doc) + "\n")
    page.write_text(to_html(doc))
    return [out / "results.json", md, page]
