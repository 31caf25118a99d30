"""The bridge letter's page (report.bridge): one self-contained HTML file — inline style, no script, no
remote resource — with every value from the store escaped for the element it goes into (reasons,
titles, resource names and responses are typed by people or read from accounts: untrusted)."""
from __future__ import annotations

from html import escape
from typing import Iterable, Optional, Sequence

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#f3f3f3}.banner{background:#fde68a;
padding:.5rem 1rem;font-weight:bold}.statement{border-left:4px solid #2563eb;padding:.5rem 1rem;background:#f5f8ff;
white-space:pre-wrap}.muted{color:#666}"""


def _cell(value) -> str:
    if value is None or value == "":
        return '<span class="muted">—</span>'
    if isinstance(value, (list, tuple)):
        return escape(", ".join(str(v) for v in value))
    return escape(str(value))


def table(headers: Sequence[str], rows: Iterable[Sequence], empty: str) -> str:
    """An HTML table, every header and cell escaped; `empty` (escaped) when there are no rows."""
    body = ["<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows]
    if not body:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _subject(dev: dict) -> Optional[str]:
    return dev.get("resource_name") or dev.get("resource") or dev.get("item") or dev.get("account")


def _sections(data: dict) -> list[str]:
    gaps = data["gaps"]
    return [
        "<h2>Monitoring</h2>",
        f"<p>{escape(str(data['days_with_scan']))} of the {escape(str(data['days']))} days had a scan "
        f"({escape(str(len(data['runs'])))} runs).</p>",
        "<h3>Days with a scan</h3>",
        table(("from", "to"), [(r["from"], r["to"]) for r in data["scanned"]], "No day had a scan."),
        "<h3>Days without a scan (monitoring gaps)</h3>",
        table(("from", "to", "days", "reason", "explained by", "explained at"),
              [(g["from"], g["to"], g["days"], g["reason"], g["explained_by"], g["explained_at"]) for g in gaps],
              "None: every day had a scan."),
        "<h2>Criteria at the latest scan</h2>",
        table(("criterion", "title", "status", "failures in these days", "still open",
               "manual items not current"),
              [(c["criterion"], c["title"], c["status"].replace("_", " ").lower(), c["failures"],
                c["open_failures"], c["manual_missing_or_expired"]) for c in data["criteria"]],
              "No criteria in the catalog."),
        "<h2>Deviations</h2>",
        table(("id", "kind", "criteria", "subject", "what", "from", "until", "state", "management's response"),
              [(d["id"], d["kind"], d["criteria"], _subject(d), d.get("what"), d["from"], d["until"], d["state"],
                d["response_text"]) for d in data["deviations"]],
              "No deviations in these days."),
        "<h2>Incidents</h2>",
        table(("id", "title", "severity", "status", "opened", "closed"),
              [(i["id"], i["title"], i["severity"], i["status"], i["created_at"], i["closed_at"])
               for i in data["incidents"]], "No incidents in these days."),
    ]


def letter_html(data: dict) -> str:
    """The letter's page from its data (data/bridge.json's values, as JSON types)."""
    window = data["window"]
    title = f"Bridge letter {window['start']} to {window['end']}"
    banner = ('<p class="banner">SIMULATED DATA: these runs were made by the demo, not read from AWS.</p>'
              if data["simulated"] else "")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>", banner,
        f"<h1>{escape(title)}</h1>",
        f"<p>The days after the last report's period ended on {escape(data['last_report_end'])}, "
        f"judged on {escape(data['judged_on'])}.</p>",
        "<h2>Management's statement</h2>", f'<p class="statement">{escape(data["statement"])}</p>',
        *_sections(data),
        '<p class="muted">The same facts are in data/bridge.json; manifest.json lists every file with its '
        "SHA-256 and manifest.sig signs it (check with <code>auditbook verify</code>).</p>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
