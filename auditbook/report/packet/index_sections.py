"""Two sections of the packet index (notebooks/packet_index.ipynb) that must read right on their own:
what the sign-offs do not cover (criteria not signed off, deviations without a management response,
the assertion's state), so an approval cannot read as covering what it does not; and how to re-draw
the recorded samples from the packet alone (docs/samples.md, which is not in the packet)."""
from __future__ import annotations

import html
from collections import Counter

from auditbook.history.sampling import ALGORITHM

SIGNED_OFF = "reviewed"  # the state an `approved` review leads to (history.signoffs.STATE_OF_DECISION)
STATE_WORDS = {"unsigned": "never prepared", "prepared": "waiting for review",
               "changes requested": "changes requested", "rejected": "rejected"}
REDRAW_ANCHOR = "redraw-samples"


def outstanding(signed: dict, deviations: list[dict]) -> dict:
    """What remains for the period (signed: history.signoffs.signoffs_for; deviations: history.deviations
    .deviations, with their responses): the criteria not signed off by state, the deviations without a
    management response (ids, and counts by kind), whether the assertion and the packet are signed off."""
    by_state: dict[str, list[str]] = {}
    for criterion, state in signed["criteria"].items():
        if state["state"] != SIGNED_OFF:
            by_state.setdefault(state["state"], []).append(criterion)
    unanswered = [d for d in deviations if d.get("response") is None]
    assertion = signed["assertion"]
    return {"criteria": len(signed["criteria"]), "criteria_not_signed_off": by_state,
            "deviations": len(deviations), "deviations_without_response": [d["id"] for d in unanswered],
            "without_response_by_kind": dict(sorted(Counter(d["kind"] for d in unanswered).items())),
            "assertion_state": assertion["signoff"]["state"], "assertion_text_changed": assertion["text_changed"],
            "assertion_signed_off": assertion["signoff"]["state"] == SIGNED_OFF and not assertion["text_changed"],
            "packet_state": signed["packet"]["state"]}


def _criteria_line(left: dict, total: int) -> str:
    if not left:
        return f"every one of the {total} criteria is signed off (reviewed and approved)"
    count = sum(len(v) for v in left.values())
    parts = [f"{STATE_WORDS.get(state, state)} ({len(ids)}): {', '.join(ids)}" for state, ids in left.items()]
    return f"{count} of the {total} criteria are not signed off — " + "; ".join(parts)


def _deviations_line(out: dict) -> str:
    missing = out["deviations_without_response"]
    if not missing:
        return f"every one of the {out['deviations']} deviations of the period has a management response"
    kinds = ", ".join(f"{kind} {n}" for kind, n in out["without_response_by_kind"].items())
    return (f"{len(missing)} of the {out['deviations']} deviations of the period have no management response "
            f"({kinds}; each is in data/deviations.json with response_text \"no management response\")")


def _assertion_line(out: dict) -> str:
    if out["assertion_signed_off"]:
        return "the management assertion is signed off (reviewed and approved)"
    state = STATE_WORDS.get(out["assertion_state"], out["assertion_state"])
    changed = "; its text changed since it was prepared" if out["assertion_text_changed"] else ""
    return f"the management assertion is not signed off ({state}{changed})"


def outstanding_html(out: dict) -> str:
    """The section in words, escaped: beside the packet's sign-off and the assertion."""
    lines = [_criteria_line(out["criteria_not_signed_off"], out["criteria"]), _deviations_line(out),
             _assertion_line(out)]
    complete = (not out["criteria_not_signed_off"] and not out["deviations_without_response"]
                and out["assertion_signed_off"])
    lead = ("Everything the packet's sign-off and the assertion rely on is signed off and answered:" if complete else
            "What remains — the packet's sign-off and the management assertion do not cover it:")
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return (f'<div id="what-remains"><p><b>{html.escape(lead)}</b></p><ul>{items}</ul></div>')


# The re-draw, with nothing but Python's standard library and the packet's data/ folder: kept as text so
# a test can run exactly what the page shows (tests/unit/test_index_sections.py).
REDRAW_CODE = '''import csv, hashlib, json, random

draw = json.load(open("data/samples.json", encoding="utf-8"))[0]    # one recorded draw
with open(draw["population_file"], newline="", encoding="utf-8") as f:
    lines = list(csv.reader(f))
while lines and len(lines[0]) == 1 and lines[0][0].startswith("#"):  # the "# completeness" lines
    lines.pop(0)
header, body = lines[0], lines[1:]
restored = lambda v: v[1:] if v.startswith("'") else v              # the spreadsheet-safety quote
rows = sorted((dict(zip(header, map(restored, r))) for r in body), key=lambda r: r["id"])
canonical = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
sha256 = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
print(sha256 == draw["population_sha256_in_packet"])  # the file is the population this packet hashed
print(sha256 == draw["population_sha256"])            # False: the population changed since the draw
ids = [r["id"] for r in rows]
sample = ids if draw["size"] >= len(ids) else random.Random(draw["seed"]).sample(ids, draw["size"])
print(sample == draw["ids"])'''


def redraw_html() -> str:
    """The section: how to re-draw a recorded sample from the packet alone."""
    return (f'<h2 id="{REDRAW_ANCHOR}">Re-drawing a sample from this packet</h2>'
            "<p>Each recorded draw is in <code>data/samples.json</code> with its algorithm "
            f"(<code>{html.escape(ALGORITHM)}</code>: Python's <code>random.Random(seed).sample</code> of the "
            "population's ids sorted in code-point order; a population no larger than the size is taken whole, "
            "sorted), its <code>seed</code>, <code>size</code>, the ids drawn, its <code>population_file</code> "
            "and the population's SHA-256 when drawn (<code>population_sha256</code>) and in this packet "
            "(<code>population_sha256_in_packet</code>: they differ if the population changed since the draw). "
            "To re-draw: read the population CSV, skipping the leading lines that start with "
            "<code>#</code> (the change and access populations open with <code># completeness</code> lines: the "
            "CloudTrail coverage and every interval no log covered), drop one leading <code>'</code> from any "
            "cell that starts with one (the spreadsheet-safety quote), hash the rows — sorted by "
            "<code>id</code>, as JSON with keys sorted, no spaces, UTF-8 — and compare, then draw with the seed. "
            "Run from the packet's folder, this prints <code>True</code> three times — the second is "
            "<code>False</code> when the population changed since the draw (the two hashes differ in "
            "<code>data/samples.json</code>; the sample is then re-drawn from the population as it is now):</p>"
            f"<pre><code>{html.escape(REDRAW_CODE)}</code></pre>")
