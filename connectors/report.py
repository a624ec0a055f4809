"""The run report: one self-contained static HTML file (inline SVG plots, inline CSS, no scripts,
nothing fetched from a CDN) written beside the manifest as ``report.html``.

Plots, each present when its stage ran: documents per stage (the funnel), tiers by source, near-
and exact-duplicate cluster sizes, the quality-score and BETR-score histograms, the containment
graph, the chosen mix and its QQT curves. Reads only small columns of the run's outputs (scores,
``duplicate_of``) with polars, never the texts. matplotlib draws (Agg backend, SVG output).
Below the plots, sampled documents (``tiers.samples.run_samples``, passed in by the flow): per
tier, per removal and quarantine reason, near-duplicate pairs side by side, top and bottom BETR.
"""

from __future__ import annotations

import glob
import html
import io
import math
import os

import numpy as np
import polars as pl

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
TIER_COLORS = {"L0": "#8C8C8C", "L1": "#DD8452", "L2": "#4C72B0", "L3": "#55A868", "L4": "#8172B3"}


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: inline SVG


def _figure(kind: str, title: str, svg: str, note: str = "") -> str:
    return (
        f'<figure class="plot" data-plot="{kind}"><figcaption>{html.escape(title)}</figcaption>{svg}'
        + (f'<p class="note">{html.escape(note)}</p>' if note else "")
        + "</figure>"
    )


def _read_column(root: str, rel: str, column: str) -> pl.Series | None:
    files = sorted(glob.glob(os.path.join(root, rel, "**", "*.parquet"), recursive=True))
    if not files:
        return None
    try:
        return pl.concat([pl.read_parquet(f, columns=[column]) for f in files])[column]
    except (pl.exceptions.ColumnNotFoundError, pl.exceptions.ComputeError):
        return None


def funnel_plot(manifest: dict):
    import matplotlib.pyplot as plt

    # stages that remove documents, then the unique documents the selected mix uses
    stages = [s for s in manifest["stages"] if s["name"] in ("ingest", "exact_dedup", "near_dedup", "select")]
    if not stages:
        return None
    labels = ["input"] + [("selected (unique)" if s["name"] == "select" else s["name"]) for s in stages]
    values = [stages[0]["docs_in"]] + [s["docs_out"] for s in stages]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.barh(labels[::-1], values[::-1], color=PALETTE[0])
    for bar, v in zip(bars, values[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v:,}", va="center", fontsize=8)
    ax.set_xlabel("documents")
    ax.set_xlim(0, max(values) * 1.18 or 1)
    return _figure(
        "funnel", "Documents per stage", _svg(fig), "Documents left after each removing stage; scoring and tiering keep every document (tiers below)."
    )


def tiers_plot(manifest: dict):
    import matplotlib.pyplot as plt

    counts = manifest.get("tiers")
    if not counts:
        return None
    sources = sorted({c["source"] for c in counts})
    tiers = sorted({c["tier"] for c in counts})
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(sources) + 1))
    left = [0] * len(sources)
    for t in tiers:
        vals = [sum(c["documents"] for c in counts if c["source"] == s and c["tier"] == t) for s in sources]
        ax.barh(sources, vals, left=left, color=TIER_COLORS.get(t, PALETTE[-1]), label=t)
        left = [a + b for a, b in zip(left, vals)]
    ax.set_xlabel("documents")
    # above the axes: inside, it hides the end of a bar
    ax.legend(ncol=len(tiers), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return _figure("tiers", "Tiers by source", _svg(fig))


def duplicate_clusters_plot(root: str):
    import matplotlib.pyplot as plt

    dup_of = _read_column(root, "removed", "duplicate_of")
    if dup_of is None or dup_of.drop_nulls().len() == 0:
        return None
    sizes = dup_of.drop_nulls().value_counts(name="n")["n"] + 1  # the kept document plus its removed copies
    fig, ax = plt.subplots(figsize=(7, 3))
    top = int(sizes.to_numpy().max())
    bins = range(2, top + 2) if top <= 40 else 40
    ax.hist(sizes.to_numpy(), bins=bins, color=PALETTE[1], log=True)
    ax.set_xlabel("cluster size (kept document + its duplicates)")
    ax.set_ylabel("clusters (log)")
    return _figure("dedup-clusters", "Duplicate cluster sizes", _svg(fig), f"{sizes.len():,} clusters; largest {top:,} documents.")


def histogram_plot(root: str, rel: str, column: str, kind: str, title: str, xlabel: str):
    import matplotlib.pyplot as plt

    values = _read_column(root, rel, column)
    if values is None:
        return None
    values = values.drop_nulls().drop_nans() if values.dtype.is_float() else values.drop_nulls()
    if values.len() == 0:
        return None
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(values.to_numpy(), bins=50, color=PALETTE[2])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("documents")
    median = float(np.median(values.to_numpy()))
    return _figure(kind, title, _svg(fig), f"{values.len():,} documents; median {median:.3g}.")


def containment_plot(root: str):
    import matplotlib.pyplot as plt

    path = os.path.join(root, "containment", "edges.parquet")
    if not os.path.exists(path):
        return None
    edges = pl.read_parquet(path)
    fig, ax = plt.subplots(figsize=(7, 6))
    nodes = sorted(set(edges["child"].to_list()) | set(edges["parent"].to_list()))
    if not nodes:
        ax.text(0.5, 0.5, "no contained tables", ha="center")
        ax.axis("off")
        return _figure("containment", "Containment graph", _svg(fig))
    pos = {n: (math.cos(2 * math.pi * i / len(nodes)), math.sin(2 * math.pi * i / len(nodes))) for i, n in enumerate(nodes)}
    for e in edges.iter_rows(named=True):
        (x0, y0), (x1, y1) = pos[e["child"]], pos[e["parent"]]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "color": PALETTE[3], "lw": 0.8, "shrinkA": 6, "shrinkB": 6})
    for n, (x, y) in pos.items():
        ax.plot(x, y, "o", color=PALETTE[0], ms=6)
        ax.text(x * 1.08, y * 1.08, n if len(n) <= 34 else "…" + n[-33:], fontsize=7.5, ha="left" if x >= 0 else "right", va="center")
    ax.set_xlim(-2.1, 2.1)
    ax.set_ylim(-1.4, 1.4)
    ax.axis("off")
    return _figure(
        "containment",
        "Containment graph",
        _svg(fig),
        f"{len(nodes)} tables in {edges.height} child → parent edges (arrow: child is contained in parent).",
    )


def mix_plot(selection: dict | None):
    import matplotlib.pyplot as plt

    if not selection:
        return None
    pools = [p for p in selection["pools"]]
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.35 * len(pools) + 0.8))
    names = [p["pool"] for p in pools]
    ax.barh(names[::-1], [p["share"] for p in pools][::-1], color=PALETTE[4])
    for i, p in enumerate(pools[::-1]):
        ax.text(p["share"], i, f" {p['share']:.2f} (x{p['epochs']:.2f})", va="center", fontsize=8)
    ax.set_xlabel("share of the token budget (epochs in brackets)")
    ax.set_xlim(0, max(p["share"] for p in pools) * 1.35 or 1)
    if selection.get("basis") == "fitted laws":
        text = f"Chosen from laws fitted on proxy-model probes of this corpus: predicted target loss {selection['predicted_loss']:.4f} bits per byte."
    elif selection["parameters"].get("a_source") == "fitted":
        text = f"Predicted accuracy {selection['predicted_accuracy']:.4f}, from the given QQT laws."
    else:
        text = (
            f"This mix follows priors (the T-MARS bucket fit per tier), not laws fitted on this corpus; its "
            f"predicted accuracy {selection['predicted_accuracy']:.4f} is relative. Run `tierlake probe` and "
            "select with --laws for a mix chosen from evidence."
        )
    return _figure("mix", f"Chosen mix for {selection['budget_tokens']:,.0f} tokens", _svg(fig), text)


def probe_plot(selection: dict | None):
    """Probe points (measured target loss) and the fitted QQT curves per pool, against bytes seen."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    evidence = ((selection or {}).get("parameters") or {}).get("evidence")
    if not evidence or not evidence.get("qqt"):
        return None
    pools = sorted(evidence["qqt"])
    cols = min(3, len(pools))
    rows = math.ceil(len(pools) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), pools):
        pts = evidence["qqt"][name]
        uniques = sorted(set(pts["unique"]))
        for i, u in enumerate(uniques):
            color = PALETTE[i % len(PALETTE)]
            seen = [s for s, uu in zip(pts["seen"], pts["unique"]) if uu == u]
            loss = [y for y, uu in zip(pts["measured"], pts["unique"]) if uu == u]
            ax.scatter(seen, loss, color=color, s=14, label=f"{u / 1e6:g} MB unique")
            curve = pts.get("curves", {}).get(str(int(u)))
            if curve:
                ax.plot(curve["seen"], curve["predicted"], color=color, lw=1)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(pools) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("target loss (bits/byte)", fontsize=8)
    axes[0][0].legend(fontsize=6)
    axes[-1][0].set_xlabel("bytes seen", fontsize=8)
    fig.tight_layout()
    held = evidence.get("qqt_heldout", {}).get("all")
    note = f"Held-out probes (largest size or repetition left out of the fit): R² {held['r2']:.3f}, MAE {held['mae']:.4f} bits/byte." if held else ""
    pk = evidence.get("projektor")
    if pk:
        note += f" projektor's predictor on held-out mixtures: R² {pk['heldout_r2']:.3f}"
        splits = pk.get("heldout_r2_other_splits")
        note += f" (median {splits['median']:.3f} over {splits['splits']} other random splits)." if splits else "."
    return _figure(
        "probes",
        "Probes and fitted laws per pool (points measured, lines fitted)",
        _svg(fig),
        "Each point is a proxy model trained on the pool's first U bytes for the bytes seen on the x axis (several passes where seen > U). " + note,
    )


def qqt_plot(selection: dict | None):
    import matplotlib.pyplot as plt

    curves = (selection or {}).get("curves")
    if not curves or selection is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.5))
    budgets = curves["budgets"]
    ax.plot(budgets, curves["mix"], color="black", lw=2, label="chosen mix")
    for i, (name, ys) in enumerate(sorted(curves["pools"].items())):
        ax.plot(budgets, ys, color=PALETTE[i % len(PALETTE)], lw=1, label=f"{name} alone")
    ax.axvline(selection["budget_tokens"], color="grey", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("QQT-predicted accuracy")
    ax.set_ylim(bottom=0)  # the relative prior can predict error > 1 far below the budget
    ax.legend(fontsize=7, ncol=2)
    return _figure(
        "qqt", "QQT curves: quality vs repetition", _svg(fig), "A small high-quality pool wins at small budgets and loses utility as it repeats."
    )


CSS = """body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.5em}table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}figure.plot{margin:1.5em 0;border:1px solid #e4e4e4;padding:.8em}
figcaption{font-weight:600;margin-bottom:.4em}.note{color:#555;font-size:.85em}svg{max-width:100%;height:auto}
.doc{border-left:3px solid #ccc;margin:.6em 0;padding:.2em .7em}.meta{font-size:.8em;color:#444}
.doc pre,.pair pre{white-space:pre-wrap;word-break:break-word;font-size:.8em;background:#fafafa;margin:.3em 0;padding:.4em;max-height:14em;overflow:auto}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:.8em;margin:.8em 0}details{margin:.4em 0}summary{cursor:pointer;font-weight:600}"""


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else html.escape(str(v)))


def _doc_html(d: dict) -> str:
    color = TIER_COLORS.get(d.get("tier") or "", "#C44E52")
    meta = (
        f"<b>{html.escape(str(d['id']))}</b> · {html.escape(str(d.get('source')))} · {html.escape(str(d.get('tier')))}"
        f" · quality {_fmt(d.get('quality_score'))} · BETR {_fmt(d.get('betr_score'))} · {_fmt(d.get('token_count'))} tokens"
    )
    return (
        f'<div class="doc" style="border-color:{color}"><div class="meta">{meta}<br>'
        f"decided by: <code>{html.escape(d.get('decided') or '')}</code></div><pre>{html.escape(d.get('text') or '')}</pre></div>"
    )


def _quarantine_html(q: dict) -> str:
    return (
        f'<div class="doc" style="border-color:#C44E52"><div class="meta"><b>{html.escape(str(q["file"]))}, line {q["line"]}</b>'
        f" · {html.escape(str(q['source']))}<br>quarantined: <code>{html.escape(q['reason'])}</code> "
        f"{html.escape(q.get('detail') or '')}</div><pre>{html.escape(q.get('text') or '')}</pre></div>"
    )


def samples_section(samples: dict | None) -> str:
    """The sampled documents of ``tiers.samples.run_samples`` as HTML ("" when there are none)."""
    if not samples:
        return ""
    parts = [
        '<h2 id="samples">Sampled documents</h2><p class="note">Drawn by a hash of the id with the run\'s seed '
        f"({samples['seed']}); texts cut to a readable length; <code>tierlake inspect RUN_DIR</code> shows more.</p>",
        "<h3>By tier</h3>",
    ]
    for t in samples["tiers"]:
        docs = "".join(_doc_html(d) for d in t["samples"])
        parts.append(f'<details open data-sample-tier="{t["tier"]}"><summary>{t["tier"]} — {t["documents"]:,} documents</summary>{docs}</details>')
    parts.append("<h3>By reason</h3>")
    for r in samples["reasons"]:
        key = html.escape(f"{r['tier']}/{r['reason']}", quote=True)
        docs = "".join(_doc_html(d) for d in r["samples"])
        parts.append(
            f'<details data-sample-reason="{key}"><summary>{html.escape(r["tier"])}: {html.escape(r["reason"])} — '
            f"{r['documents']:,} documents</summary>{docs}</details>"
        )
    by_reason: dict[str, list[dict]] = {}
    for q in samples.get("quarantine") or []:
        by_reason.setdefault(q["reason"], []).append(q)
    for reason, rows in sorted(by_reason.items()):
        parts.append(
            f'<details data-sample-quarantine="{html.escape(reason, quote=True)}"><summary>quarantine: '
            f"{html.escape(reason)}</summary>{''.join(_quarantine_html(q) for q in rows)}</details>"
        )
    if samples.get("near_pairs"):
        parts.append(
            '<h3>Near-duplicate pairs (removed | kept)</h3><p class="note">Jaccard of the word shingles with the '
            "document kept for the cluster; a copy joined to the cluster through another member can be below "
            "the run's threshold.</p>"
        )
        for p in samples["near_pairs"]:
            parts.append(
                f'<div class="pair" data-sample-pair="{html.escape(p["removed_id"], quote=True)}">'
                f'<div><div class="meta"><b>{html.escape(p["removed_id"])}</b> removed · shingle Jaccard {p["jaccard"]:.3f}</div>'
                f"<pre>{html.escape(p['removed_text'])}</pre></div>"
                f'<div><div class="meta"><b>{html.escape(p["kept_id"])}</b> kept</div><pre>{html.escape(p["kept_text"])}</pre></div></div>'
            )
    for key, title in (("betr_top", "Highest BETR scores"), ("betr_bottom", "Lowest BETR scores")):
        if samples.get(key):
            parts.append(
                f'<details data-sample-betr="{key[5:]}"><summary>{title}</summary>' + "".join(_doc_html(d) for d in samples[key]) + "</details>"
            )
    return "\n".join(parts)


def samples_markdown(samples: dict, text_chars: int = 300) -> str:
    """The same samples as markdown, for the run's Prefect artifact (shorter texts)."""

    def quote(text: str) -> str:
        t = " ".join((text or "").split())
        return (t[:text_chars] + "…") if len(t) > text_chars else t

    def doc(d: dict) -> str:
        return (
            f"- `{d['id']}` ({d['source']}, {d['tier']}; quality {d['quality_score'] if d['quality_score'] is None else round(d['quality_score'], 3)}, "
            f"BETR {d['betr_score'] if d['betr_score'] is None else round(d['betr_score'], 3)}) — decided by `{d['decided']}`\n  > {quote(d['text'])}"
        )

    lines = [f"# Sampled documents (seed {samples['seed']})", "", "## By tier"]
    for t in samples["tiers"]:
        lines += [f"### {t['tier']} — {t['documents']:,} documents", *[doc(d) for d in t["samples"]]]
    lines.append("## By reason")
    for r in samples["reasons"]:
        lines += [f"### {r['tier']}: {r['reason']} — {r['documents']:,} documents", *[doc(d) for d in r["samples"][:2]]]
    for q in samples.get("quarantine") or []:
        lines.append(f"- quarantine `{q['reason']}`: {q['file']} line {q['line']} — {quote(q['text'])}")
    if samples.get("near_pairs"):
        lines += ["## Near-duplicate pairs", "| removed | kept | Jaccard |", "|---|---|---|"]
        lines += [
            f"| `{p['removed_id']}`: {quote(p['removed_text'])[:120]} | `{p['kept_id']}`: {quote(p['kept_text'])[:120]} | {p['jaccard']:.3f} |"
            for p in samples["near_pairs"]
        ]
    if samples.get("betr_top"):
        lines += ["## Highest BETR scores", *[doc(d) for d in samples["betr_top"]]]
    return "\n".join(lines)


def _stage_row(s: dict) -> str:
    """One row of the stage table; the containment scan counts tables, not documents."""
    if s["name"] == "containment":
        d = s.get("details", {})
        text = f"{d.get('tables', 0):,} tables scanned, {d.get('edges', 0):,} contained pairs (no document removed)"
        return (
            f'<tr><td>containment</td><td>-</td><td>-</td><td colspan=2 style="text-align:left">{html.escape(text)}</td>'
            f"<td>{s['seconds']:.1f}</td></tr>"
        )
    return (
        f"<tr><td>{html.escape(s['name'])}</td><td>{s['docs_in']:,}</td><td>{s['docs_out']:,}</td>"
        f"<td>{html.escape(', '.join(f'{k}: {v:,}' for k, v in sorted(s['removed'].items())) or '-')}</td>"
        f"<td>{html.escape(', '.join(f'{k}: {v:,}' for k, v in sorted(s['quarantined'].items())) or '-')}</td>"
        f"<td>{s['seconds']:.1f}</td></tr>"
    )


def build_report(root: str, manifest: dict, samples: dict | None = None) -> str:
    """Render the report of the run in ``root`` (its manifest as a dict, its sampled documents
    when given); returns the HTML."""
    import matplotlib

    matplotlib.use("Agg")
    t = manifest["totals"]
    rows = "".join(_stage_row(s) for s in manifest["stages"])
    plots = [
        funnel_plot(manifest),
        tiers_plot(manifest),
        duplicate_clusters_plot(root),
        histogram_plot(root, "tiers/documents", "quality_score", "quality-hist", "Quality score", "quality model probability"),
        histogram_plot(root, "scores/scores", "betr_score", "betr-hist", "BETR score", "similarity to the targets (higher = closer)"),
        containment_plot(root),
        mix_plot(manifest.get("selection")),
        qqt_plot(manifest.get("selection")),
        probe_plot(manifest.get("selection")),
    ]
    body = "\n".join(p for p in plots if p) + samples_section(samples)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>tierlake run {html.escape(manifest["run_id"])}</title><style>{CSS}</style></head><body>
<h1>tierlake run <code>{html.escape(manifest["run_id"])}</code> — {html.escape(manifest["name"])}</h1>
<p>Created {html.escape(manifest["created_at"])}; seed {manifest["seed"]}; recipe sha256 <code>{manifest["recipe_sha256"][:16]}…</code>.
Documents in {t["docs_in"]:,} = kept {t["docs_out"]:,} + removed {t["removed"]:,} + quarantined {t["quarantined"]:,}.</p>
<table><tr><th>stage</th><th>in</th><th>out</th><th>removed</th><th>quarantined</th><th>s</th></tr>{rows}</table>
{body}
</body></html>
"""


def write_report(root: str, manifest: dict, samples: dict | None = None) -> str:
    """Write ``root/report.html`` (temporary name, then rename); returns its path."""
    text = build_report(root, manifest, samples)
    path = os.path.join(root, "report.html")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path
