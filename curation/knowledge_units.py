"""L4 knowledge units: self-contained units extracted from L3 documents, kept only when verified.

Wang et al. 2026 (arXiv 2602.09003) define L4 as "organized and verifiable knowledge" but publish
no L4 procedure (``../shared/reference/scoring-and-tiers.md`` §3), so the rules here are
tierlake's, chosen so that verification is deterministic and cannot pass a wrong unit silently:

* ``worked_solution`` — "Question: … Solution: … #### N" (GSM8K's answer convention). Every
  arithmetic claim in the solution (``a op b = c``, ``a / b = q remainder r``, and GSM8K's
  ``<<a*b=c>>`` annotations) is recomputed exactly with fractions; the unit verifies when it
  holds at least one claim, every claim is true, and the final answer N is the result of one of
  them (the answer follows from the work shown).
* ``qa`` — "Question: …" followed by "Answer: …"; ``definition`` — "X is defined as Y." /
  "X refers to Y.". These cannot be checked from one document; they verify by agreement: the
  same normalized question (term) with the same normalized answer (definition) in documents of
  at least ``min_sources`` different sources (:func:`agreement_keys` gives the keys; the Spark
  stage counts sources).

Each unit carries provenance: the document id and the character span [start, end) in its text.
Extraction runs only on L3 documents (a few percent of a corpus), one compiled regex scan per
document.
"""

from __future__ import annotations

import re
from fractions import Fraction

WORKED = re.compile(r"Question:\s*(?P<q>.+?)\s*\n\s*Solution:\s*(?P<s>.+?####\s*(?P<a>-?[\d,]*\.?\d+))", re.S)
QA = re.compile(r"Question:\s*(?P<q>[^\n]+?)\s*\n+\s*Answer(?:\s*\d+)?:\s*(?P<a>[^\n]+)")
DEFINITION = re.compile(
    r"(?:^|(?<=[.!?]\s))(?P<t>[A-Z][\w'-]*(?:\s+[\w'-]+){0,5}?)\s+(?:is defined as|refers to)\s+(?P<d>[^.!?\n]{8,300}[.!?])", re.M
)
NUMBER = r"-?\d+(?:,\d{3})*(?:\.\d+)?"
CLAIM = re.compile(rf"(?P<a>{NUMBER})\s*(?P<op>[-+*/×x÷])\s*(?P<b>{NUMBER})\s*=\s*(?P<c>{NUMBER})(?:\s+remainder\s+(?P<r>{NUMBER}))?")
ANNOTATION = re.compile(r"<<(?P<expr>[-+*/().\d\s]+)=(?P<c>-?[\d.]+)>>")
_SAFE_EXPR = re.compile(r"^[-+*/().\d\s]+$")


def _num(s: str) -> Fraction:
    return Fraction(s.replace(",", ""))


def _eval_expr(expr: str) -> Fraction | None:
    """Exact value of a +-*/ expression of numbers and parentheses (no names, no calls)."""
    if not _SAFE_EXPR.match(expr):
        return None
    tokens = re.findall(r"\d+(?:\.\d+)?|[-+*/()]", expr)
    pos = 0

    def atom():
        nonlocal pos
        tok = tokens[pos] if pos < len(tokens) else None
        if tok == "(":
            pos += 1
            v = add()
            pos += 1
            return v
        if tok == "-":
            pos += 1
            return -atom()
        pos += 1
        return Fraction(tok)

    def mul():
        nonlocal pos
        v = atom()
        while pos < len(tokens) and tokens[pos] in "*/":
            op = tokens[pos]
            pos += 1
            w = atom()
            v = v * w if op == "*" else v / w
        return v

    def add():
        nonlocal pos
        v = mul()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            w = mul()
            v = v + w if op == "+" else v - w
        return v

    try:
        value = add()
        return value if pos == len(tokens) else None
    except (ZeroDivisionError, IndexError, ValueError, TypeError):
        return None


def check_arithmetic(solution: str, answer: str) -> tuple[bool, str]:
    """(verified, reason) for a worked solution and its final answer."""
    results: list[Fraction] = []
    for m in CLAIM.finditer(solution):
        a, b, c, op = _num(m["a"]), _num(m["b"]), _num(m["c"]), m["op"]
        if m["r"] is not None:
            r = _num(m["r"])
            ok = op in "/÷" and b != 0 and a == c * b + r and 0 <= r < abs(b)
            results += [c, r]
        else:
            value = {"+": a + b, "-": a - b, "*": a * b, "×": a * b, "x": a * b}.get(op)
            if op in "/÷":
                value = a / b if b != 0 else None
            ok = value is not None and value == c
            results.append(c)
        if not ok:
            return False, f"arithmetic_wrong: {m.group(0)}"
    for m in ANNOTATION.finditer(solution):
        value = _eval_expr(m["expr"])
        if value is None or value != Fraction(m["c"]):
            return False, f"arithmetic_wrong: <<{m['expr']}={m['c']}>>"
        results.append(value)
    if not results:
        return False, "no_checkable_arithmetic"
    if _num(answer) not in results:
        return False, f"answer_not_derived: {answer}"
    return True, f"arithmetic_verified({len(results)} results)"


def normalize_key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def extract_units(doc_id: str, text: str) -> list[dict]:
    """Units of one document with span, kind, verification (worked solutions) or agreement keys."""
    units = []
    covered: list[tuple[int, int]] = []
    for m in WORKED.finditer(text):
        ok, reason = check_arithmetic(m["s"], m["a"])
        units.append(
            {
                "kind": "worked_solution",
                "start": m.start(),
                "end": m.end(),
                "question": m["q"],
                "answer": m["a"],
                "verified": ok,
                "verification": reason,
                "key": normalize_key(m["q"]),
                "answer_key": normalize_key(m["a"]),
            }
        )
        covered.append((m.start(), m.end()))
    for m in QA.finditer(text):
        if any(s <= m.start() < e for s, e in covered):
            continue
        units.append(
            {
                "kind": "qa",
                "start": m.start(),
                "end": m.end(),
                "question": m["q"],
                "answer": m["a"],
                "verified": False,
                "verification": "needs_agreement",
                "key": normalize_key(m["q"]),
                "answer_key": normalize_key(m["a"]),
            }
        )
    for m in DEFINITION.finditer(text):
        units.append(
            {
                "kind": "definition",
                "start": m.start("t"),
                "end": m.end(),
                "question": m["t"],
                "answer": m["d"],
                "verified": False,
                "verification": "needs_agreement",
                "key": normalize_key(m["t"]),
                "answer_key": normalize_key(m["d"]),
            }
        )
    for i, u in enumerate(units):
        u["id"] = doc_id
        u["unit_id"] = f"{doc_id}#{u['kind']}@{u['start']}"
    return units
