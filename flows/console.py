"""Console output of the CLI commands that print more than a line (the CLI only parses and calls)."""
from __future__ import annotations


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


def mix_basis(mix: dict) -> str:
    """Whether a mix follows fitted laws or priors, with its prediction, in one phrase."""
    if mix.get("basis") == "fitted laws":
        return f"from fitted laws: predicted target loss {mix['predicted_loss']:.4f} bits/byte"
    acc = mix.get("predicted_accuracy")
    return ("mix follows priors (T-MARS fit per tier, not fitted on this corpus; `tierlake probe` fits laws)"
            + (f": relative predicted accuracy {acc:.4f}" if acc is not None else ""))
