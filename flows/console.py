"""Console output of the CLI commands that print more than a line (the CLI only parses and calls)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import time


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
        print(
            f"  {pool:<24} b {law['b']:+.4f}  tau {law['tau']:6.2f}  a {law['a']:.3g}  d {law['d']:.3f}  "
            f"in-sample R2 {law['r2_in_sample']:.3f} ({law['points']} points)"
        )
    for axis, check in laws["qqt_heldout"].items():
        label = {"size": "largest size left out", "repetition": "largest repetition left out", "all": "both"}[axis]
        print(f"  QQT held-out ({label}): R2 {check['r2']:.3f}, MAE {check['mae']:.4f} bpb over {check['points']} points")
    pk = laws.get("projektor")
    if pk:
        print(
            f"  projektor ({pk['form']} form{', ridge' if pk.get('ridge') else ''}, {pk['fit_points']} mixtures fit): "
            f"held-out R2 {pk['heldout_r2']:.3f} "
            f"on {pk['heldout_points']} mixtures"
            + (
                f" (median {pk['heldout_r2_other_splits']['median']:.3f} over {pk['heldout_r2_other_splits']['splits']} other random splits)"
                if pk.get("heldout_r2_other_splits")
                else ""
            )
        )
    else:
        print(f"  projektor: {laws.get('projektor_note', 'not fitted')}")
    print(f"  {output}/laws.json  {output}/probes.parquet")


def print_run_summary(manifest, path: str, seconds: float) -> None:
    """The end of `tierlake run` / `demo`: per-stage accounting, tiers, the mix, where the report is."""
    t = manifest.totals
    print(f"\ntierlake run {manifest.run_id} finished in {seconds:.1f} s")
    for s in manifest.stages:
        if s.name == "containment":
            print(
                f"  {s.name:<12} {s.details['tables']} tables, {s.details['edges']} contained pairs "
                f"({s.details['pruned_before_verification_pct']}% of pairs pruned before verification)"
            )
            continue
        extra = {**s.removed, **{f"quarantined {k}": v for k, v in s.quarantined.items()}}
        print(f"  {s.name:<12} in {s.docs_in:>8}  out {s.docs_out:>8}  {extra if extra else ''}")
    print(f"  documents in {t.docs_in} = kept {t.docs_out} + removed {t.removed} + quarantined {t.quarantined}")
    print(f"  kept ~{t.tokens_out:,} tokens in {len(manifest.outputs['documents'].shards)} shard(s)")
    if manifest.tiers:
        by_tier: dict[str, int] = {}
        for c in manifest.tiers:
            by_tier[c.tier] = by_tier.get(c.tier, 0) + c.documents
        details: dict = next((s.details for s in manifest.stages if s.name == "tier"), {})
        print(
            "  tiers (every ingested document): "
            + ", ".join(f"{k} {v}" for k, v in sorted(by_tier.items()))
            + f"; L4 units verified {details.get('l4_units_verified')}, rejected {details.get('l4_units_rejected')}"
        )
    if manifest.selection:
        from tiers.select_stage import mix_basis

        sel = manifest.selection
        print(
            f"  selection: {sel['budget_tokens']:,.0f}-token mix from {sum(1 for p in sel['pools'] if p['share'] > 0)} pools, "
            + mix_basis(sel)
            + "; "
            + ", ".join(f"{p['pool']} {p['share']:.2f} x{p['epochs']:.1f}" for p in sel["pools"] if p["share"] > 0)
        )
    if not path.startswith("s3://"):
        print(f"report:   {os.path.join(os.path.dirname(path), 'report.html')}")
    print(f"manifest: {path}")


def show_manifest(path: str, started: float) -> None:
    """Read a finished run's manifest and print its summary (only the path for s3:// runs)."""
    from connectors.manifest import Manifest

    if path.startswith("s3://"):
        print(f"manifest: {path}")
        return
    with open(path) as fh:
        manifest = Manifest.model_validate(json.load(fh))
    print_run_summary(manifest, path, time.time() - started)


def print_tier_stats(stats: dict, output: str, seconds: float) -> None:
    """What `tierlake tier` / `retier` decided: documents per tier, thresholds, the quality model's CV."""
    tiers = stats["tiers"]
    print(
        f"tier: {stats['documents_in']} documents in ({seconds:.1f} s): "
        + ", ".join(f"{t} {n}" for t, n in tiers.items())
        + (f"; quarantined {stats['quarantined']}" if stats.get("quarantined") else "")
    )
    th = stats["thresholds"]
    print("  thresholds: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in th.items()))
    if stats.get("quality_model_cv"):
        cv = stats["quality_model_cv"]
        print(f"  quality model: cross-validated AUC {cv['auc_mean']:.3f} +- {cv['auc_std']:.3f} ({cv['folds']} folds)")
    print(f"  L4 units: {stats['l4_units_verified']} verified, {stats['l4_units_rejected']} rejected")
    print(f"  {output}/documents/tier=L0..L4/  {output}/units/  {output}/signals/  {output}/stats.json")
