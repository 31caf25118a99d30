"""Helpers for the notebooks: HTML that escapes every value (resource names and tags are untrusted),
links evidence and documents inside a packet, and plotly set up so that the packet renderer can turn
figures into offline HTML."""
from __future__ import annotations

import csv
import datetime as dt
import html
import re
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

from auditbook.catalog.parameters import as_text

HEX64 = re.compile(r"^[0-9a-f]{64}$")


_CATALOGS: dict = {}
_ENGINES: dict = {}


def catalog(path: Optional[str] = None):
    """The catalog, loaded once per kernel while the file is unchanged (a packet runs 62 notebooks
    on one kernel)."""
    from pathlib import Path

    from auditbook.catalog.model import DEFAULT_PATH, load_catalog
    target = Path(path) if path else DEFAULT_PATH
    try:
        stat = target.stat()
    except OSError:
        return load_catalog(target)  # reports the problem in one line
    key = (str(target.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _CATALOGS:
        _CATALOGS.clear()
        _CATALOGS[key] = load_catalog(target)
    return _CATALOGS[key]


def engine(db: Optional[str] = None):
    """One engine per store URL per kernel; a store that does not exist is an error, never a new empty
    store (a notebook reads a store: an empty one would make empty pages)."""
    from auditbook.store.db import open_engine, resolve_url
    url = resolve_url(db)
    if url not in _ENGINES:
        _ENGINES[url] = open_engine(url, create=False)
    return _ENGINES[url]


def setup() -> None:
    import plotly.io as pio
    pio.renderers.default = "plotly_mimetype"  # rendered by Jupyter, converted to HTML in packets
    pd.set_option("display.max_rows", 200)


ISO_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?$")


def utc_time(value: dt.datetime) -> str:
    """A time as "YYYY-MM-DD HH:MM UTC" (a time without a zone is the store's UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def time_text(value: str) -> str:
    """An ISO 8601 time stored as text ("2026-12-01T21:20:27.975895+00:00") as "YYYY-MM-DD HH:MM UTC";
    any other text unchanged."""
    if not ISO_TIME.match(value):
        return value
    return utc_time(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))


def cell(value, yes_no: bool = False) -> str:
    """One value as table-cell HTML, escaped (a time as "YYYY-MM-DD HH:MM UTC", whether a datetime or
    ISO text; a list joined; nothing as a dash; with `yes_no`, a flag as yes/no)."""
    if value is None or (not isinstance(value, (list, tuple, set, dict)) and pd.isna(value)):
        return '<span class="ab-muted">—</span>'
    if yes_no and isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return html.escape(utc_time(value))
    if isinstance(value, str):
        return html.escape(time_text(value))
    if isinstance(value, (list, tuple, set)):
        return html.escape(", ".join(str(v) for v in value))
    if isinstance(value, float):
        return html.escape(f"{value:g}")
    return html.escape(str(value))


def status(value: str) -> str:
    text = html.escape(str(value))
    return f'<span class="ab-status ab-{text}">{text.replace("_", " ").lower()}</span>'


STATUSES = ("PASS", "FAIL", "ERROR", "EXCEPTED", "NEEDS_EVIDENCE")


def named_statuses(value) -> str:
    """Names with their statuses — {"CC7.3": "FAIL"} or the text "CC7.3 FAIL; CC7.5 NEEDS_EVIDENCE" —
    each status as its badge (every name escaped)."""
    pairs = value.items() if isinstance(value, dict) else (
        part.rpartition(" ")[::2] for part in str(value or "").split("; ") if part)
    out = []
    for name, state in pairs:
        if state in STATUSES:
            out.append(f"{html.escape(str(name))} {status(state)}".strip())
        else:
            out.append(html.escape(f"{name} {state}".strip()))
    return "; ".join(out) if out else '<span class="ab-muted">—</span>'


def evidence_link(packet_dir: Optional[str]) -> Callable[[object], str]:
    """Evidence hashes as links to the packet's evidence/<sha256>.json (plain text outside a packet)."""
    def render(value) -> str:
        hashes = value if isinstance(value, (list, tuple)) else [value]
        out = []
        for h in hashes:
            h = str(h)
            if packet_dir and HEX64.match(h):
                out.append(f'<a href="../evidence/{h}.json" title="{h}">{h[:12]}…</a>')
            else:
                out.append(html.escape(h[:12] + ("…" if len(h) > 12 else "")))
        return " ".join(out) if out else '<span class="ab-muted">—</span>'
    return render


ROWS_SHOWN = 200  # rows of a long table on a page; the whole table is in the packet's data/ folder


def data_csv(df: Optional[pd.DataFrame], packet_dir: Optional[str], name: str) -> Optional[str]:
    """The whole table as the packet's data/<name> (a CSV whose cells a spreadsheet cannot run as
    formulas: resource names and tags are untrusted); its name, or None outside a packet or when empty."""
    if Path(name).name != name or name.startswith("."):
        raise ValueError(f"data file name {name!r}: a plain file name is required")
    if not packet_dir or df is None or df.empty:
        return None
    import os
    import tempfile
    out = Path(packet_dir) / "data" / name
    if out.is_file():  # another notebook of this build wrote it: the same check's rows, the same bytes
        return name
    out.parent.mkdir(parents=True, exist_ok=True)
    # written whole and renamed into place: two notebooks of a packet may write the same per-check file
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out.parent)
    try:
        columns = [_csv_column(df.iloc[:, i]) for i in range(df.shape[1])]
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            # what DataFrame.to_csv(index=False) writes (it writes through the same csv module), without
            # building a second frame of a 10,000-row table's cells
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow([csv_text(c) for c in df.columns])
            writer.writerows(zip(*columns))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return name


def _csv_column(column: pd.Series) -> list[str]:
    """A column's cells as CSV text a spreadsheet cannot run: a value repeated down the column (a check's
    message, an account, a status, a run's time) is judged once. A text or time column is taken apart into
    its distinct values first (no Python object per cell: a 100,000-row population's columns are pyarrow
    strings and datetime64); any other column value by value."""
    from auditbook.history.populations import neutralised
    if _exact_distinct(column.dtype):
        codes, distinct = pd.factorize(column)  # a missing value is -1
        texts = [neutralised(csv_text(v)) for v in distinct.tolist()]
        missing = neutralised(csv_text(None))
        return [texts[c] if c >= 0 else missing for c in codes.tolist()]
    judged: dict[str, str] = {}
    out = []
    for v in column.tolist():
        if type(v) is str:
            text = judged.get(v)
            if text is None:
                text = judged[v] = neutralised(v)
        else:
            text = neutralised(csv_text(v))
        out.append(text)
    return out


def _exact_distinct(dtype) -> bool:
    """Whether equal cells of this dtype always have the same text (pandas' own string and datetime
    dtypes; not `object`, where 1 and True are equal but written differently)."""
    return isinstance(dtype, pd.StringDtype) or pd.api.types.is_datetime64_any_dtype(dtype)


def check_csvs(df: Optional[pd.DataFrame], packet_dir: Optional[str], prefix: str) -> list[str]:
    """A table of several checks' rows as one data/<prefix>-<check>.csv per check: a check shared by
    several criteria is written once for all of them (the same rows under the same name). The names."""
    if not packet_dir or df is None or df.empty:
        return []
    return [data_csv(rows, packet_dir, f"{prefix}-{check}.csv") for check, rows in df.groupby("check", sort=True)]


def csv_text(value) -> str:
    """One value as CSV text: a date in ISO form, a list joined with spaces, nothing as empty."""
    if value is None or (not isinstance(value, (list, tuple, set, dict)) and pd.isna(value)):
        return ""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set)):
        return " ".join(str(v) for v in value)
    return str(value)


def capped_line(shown: int, total: int, full) -> str:
    """The line over a capped table: how many rows it shows and where the whole list is (`full`: the
    name of a file in the packet's data/, or a list of them, e.g. one per check)."""
    line = f"Showing {shown:,} of {total:,} rows"
    names = [full] if isinstance(full, str) else list(full or [])
    if names:
        links = ", ".join(f'<a class="ab-full" href="../data/{html.escape(n, quote=True)}">data/{html.escape(n)}</a>'
                          for n in names)
        line += f"; the full list{' by check' if len(names) > 1 else ''}: {links}"
    return f'<p class="ab-muted ab-capped">{line}.</p>'


def table(df: pd.DataFrame, *, empty: str = "None.", limit: Optional[int] = None, full=None,
          render: Optional[dict[str, Callable[[object], str]]] = None, caption: Optional[str] = None,
          yes_no: bool = False):
    """An HTML table of a DataFrame: every value escaped unless a column has its own renderer
    (which must escape what it shows). With `limit`, a longer table shows its first rows under a line
    saying so and linking `full` (the name of the whole table's file in the packet's data/, or a list).
    With `yes_no`, flags read yes/no (the packet index) instead of True/False."""
    from IPython.display import HTML
    if df is None or df.empty:
        return HTML(f'<p class="ab-muted">{html.escape(empty)}</p>')
    render = render or {}
    shown = df if limit is None else df.head(limit)
    head = "".join(f"<th>{html.escape(str(c).replace('_', ' '))}</th>" for c in shown.columns)
    rows = []
    for rec in shown.itertuples(index=False, name=None):
        cells = [render[c](v) if c in render else cell(v, yes_no) for c, v in zip(shown.columns, rec)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    more = capped_line(limit, len(df), full) if limit is not None and len(df) > limit else ""
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return HTML(f'{more}<table class="ab-table">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def long_table(df: pd.DataFrame, name: str, packet_dir: Optional[str], *, limit: int = ROWS_SHOWN, **kw):
    """A table that may be long: past `limit` rows it is capped, and inside a packet the whole table is
    written to data/<name> and linked from the line over it."""
    full = data_csv(df, packet_dir, name) if df is not None and len(df) > limit else None
    return table(df, limit=limit, full=full, **kw)


def code(value) -> str:
    """A value shown as code (a check's expression), escaped."""
    return f"<code>{html.escape(str(value))}</code>" if value else '<span class="ab-muted">—</span>'


def check_conditions(checks, parameters: Optional[dict] = None) -> pd.DataFrame:
    """What each automated check evaluates: its condition in words (the title), the expression (the
    JMESPath, or the registered function), the thresholds it reads (each parameter's value in force
    and where it was set: docs/parameters.md), and the remediation."""
    return pd.DataFrame([{"check": c.id, "condition (in words)": c.title,
                          "expression": c.expect if c.expect is not None else f"function: {c.function}",
                          "parameters": parameters_in(c, parameters or {}),
                          "resource_type": c.resource, "severity": c.severity, "remediation": c.remediation}
                         for c in checks])


def parameters_in(check, parameters: dict) -> str:
    """A check's thresholds as printed beside it: `backup_retention_days = 30 (company-parameters.yaml)`."""
    shown = [f"{name} = {as_text(parameters[name].value)} ({parameters[name].source})"
             for name in check.parameters if name in parameters]
    return "; ".join(shown) or "—"


def text(markup: str, **values) -> "object":
    """HTML from a trusted template with escaped values: text("<h2>{title}</h2>", title=untrusted)."""
    from IPython.display import HTML
    return HTML(markup.format(**{k: html.escape(str(v)) for k, v in values.items()}))


GAPS_LISTED = 12  # ranges of days without a scan named in the coverage line; the rest are counted


def coverage(cov: dict) -> "object":
    """The period's coverage line (history.period.PeriodRuns.coverage): a closed period is described as
    closed, a running one as "so far", and the days without a scan are named."""
    if cov["closed"]:
        span = "{observed} of the {days} days of the period (closed {end}) had a scan"
    else:
        span = "{observed} of the {days} days of the period so far (it ends {end}) had a scan"
    ranges = [f"{a}" if a == b else f"{a} to {b}" for a, b in cov["gaps"]]
    if not ranges:
        gaps = "a scan ran on every day" + ("" if cov["closed"] else " so far")
    else:
        more = len(ranges) - GAPS_LISTED
        gaps = "days without a scan: " + ", ".join(ranges[:GAPS_LISTED]) + (f" and {more} more" if more > 0 else "")
    return text('<p id="period-coverage"><b>Period</b> {start} to {end} · {runs} runs · ' + span + " · {gaps}</p>",
                start=cov["start"], end=cov["end"], runs=cov["runs"], observed=cov["observed"], days=cov["days"],
                gaps=gaps)


def simulated_banner(runs) -> Optional[object]:
    sim = [r for r in runs if r.simulated]
    if not sim:
        return None
    return text('<div class="ab-banner"><b>SIMULATED DATA.</b> {n} of the {total} runs in this period were '
                'produced by the auditbook demo (a simulated AWS organisation and a simulated quarter of '
                'daily scans); they are not evidence about any real system.</div>', n=len(sim), total=len(runs))
