"""Console output of the CLI commands that print more than a line (the CLI only parses and calls)."""
from __future__ import annotations

import os
import shutil
import sys
import textwrap


def page(text: str, no_pager: bool = False) -> None:
    """Print ``text``, through the user's pager ($PAGER, else less) when stdout is a terminal."""
    if not no_pager and sys.stdout.isatty() and text.count("\n") > shutil.get_terminal_size().lines:
        import pydoc

        os.environ.setdefault("LESS", "-R")
        pydoc.pager(text)
    else:
        print(text)


def render_documents(docs: list[dict]) -> str:
    """Documents of ``tierlake inspect``: a header with the deciding signals, then the wrapped text."""
    width = max(40, min(shutil.get_terminal_size().columns, 120))
    out = []
    for i, d in enumerate(docs, 1):
        head = f"[{i}] {d['id']}  source {d.get('source')}  tier {d.get('tier') or '-'}  reason {d.get('reason') or '-'}"
        scores = "  ".join(f"{k} {d[k]:.4f}" for k in ("quality_score", "betr_score") if isinstance(d.get(k), float))
        tokens = f"  tokens {d['token_count']}" if d.get("token_count") is not None else ""
        out += ["=" * width, head, (scores + tokens).strip() or None, f"decided by: {d.get('decided') or '-'}", "-" * width]
        for para in (d.get("text") or "").splitlines() or [""]:
            out += textwrap.wrap(para, width) or [""]
    return "\n".join(line for line in out if line is not None)


def render_reasons(counts: dict[str, int]) -> str:
    """``tierlake inspect --list-reasons``: tier/reason and document count per line."""
    width = max((len(k) for k in counts), default=10)
    return "\n".join(f"{k:<{width}}  {v:>10,}" for k, v in counts.items())


def print_laws(laws: dict, probes: int, output: str) -> None:
    """What ``tierlake probe`` fitted: per-pool QQT laws, held-out checks, projektor's predictor."""
    print(f"probe: {probes} probes ({laws['recipe']} proxy, loss in bits per byte on {', '.join(laws['benchmarks'])})")
    for pool, law in laws["qqt"].items():
        print(f"  {pool:<24} b {law['b']:+.4f}  tau {law['tau']:6.2f}  a {law['a']:.3g}  d {law['d']:.3f}  "
              f"in-sample R2 {law['r2_in_sample']:.3f} ({law['points']} points)")
    for axis, check in laws["qqt_heldout"].items():
        label = {"size": "largest size left out", "repetition": "largest repetition left out", "all": "both"}[axis]
        print(f"  QQT held-out ({label}): R2 {check['r2']:.3f}, MAE {check['mae']:.4f} bpb over {check['points']} points")
    pk = laws.get("projektor")
    if pk:
        print(f"  projektor ({pk['form']} form{', ridge' if pk.get('ridge') else ''}, {pk['fit_points']} mixtures fit): "
              f"held-out R2 {pk['heldout_r2']:.3f} "
              f"on {pk['heldout_points']} mixtures")
    else:
        print(f"  projektor: {laws.get('projektor_note', 'not fitted')}")
    print(f"  {output}/laws.json  {output}/probes.parquet")
