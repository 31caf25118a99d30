"""The wall screen's pieces as HTML (app/views/wall.py): every untrusted string escaped with ui.h;
status by text and shape as well as colour (glyphs from the page's fonts: DejaVu Sans has every one)."""
from __future__ import annotations

import datetime as dt

import ui

SEVERITY_MARK = {"critical": "✕", "high": "▲", "medium": "●", "low": "○"}
SEVERITY_COLOUR = {"critical": "#ff6b6b", "high": "#ffa657", "medium": "#e3b341", "low": "#8b949e"}

CSS = """<style>
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stSidebar"],
[data-testid="stSidebarCollapsedControl"], footer {display: none !important;}
.stApp, [data-testid="stAppViewContainer"] {background: #0d1117 !important; color: #e6edf3 !important;}
.block-container {padding-top: 0.8rem !important; max-width: 100% !important;}
.ab-wall, .ab-tile, .ab-row, .ab-banner, .ab-head {font-family: "Source Sans", "Source Sans Pro", "DejaVu Sans", sans-serif;}
.ab-glyph {font-family: "DejaVu Sans", sans-serif;}
.ab-wall h1 {font-size: 42px; margin: 0 0 4px 0; color: #e6edf3;}
.ab-sim {display: inline-block; background: repeating-linear-gradient(45deg, #e3b341, #e3b341 14px, #000 14px, #000 18px);
  color: #000; font-size: 30px; font-weight: 800; padding: 2px 16px; margin-left: 18px; border: 3px solid #e3b341;}
.ab-sim span {background: #e3b341; padding: 0 8px;}
.ab-banner {background: #cf222e; color: #fff; font-size: 36px; font-weight: 800; padding: 10px 20px;
  border-radius: 10px; border: 6px solid #fff; margin-bottom: 8px;}
.ab-tile {border-radius: 14px; padding: 14px 20px; color: #fff; min-height: 250px;}
.ab-tile .name {font-size: 32px; font-weight: 700; text-transform: capitalize;}
.ab-tile .state {font-size: 26px; font-weight: 800; letter-spacing: 1px;}
.ab-tile .big {font-size: 72px; font-weight: 800; line-height: 1.05;}
.ab-tile .small {font-size: 24px;}
.ab-head {font-size: 32px; font-weight: 700; margin: 8px 0 4px 0; color: #e6edf3;}
.ab-row {font-size: 28px; margin: 4px 0; color: #e6edf3; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
.ab-age {display: inline-block; min-width: 130px; color: #8b949e; font-weight: 700;}
.ab-more {font-size: 26px; color: #8b949e; font-weight: 700;}
.ab-breach {background: #cf222e; color: #fff; font-weight: 800; border-radius: 6px; padding: 0 8px;}
.ab-stale {background: #bf8700; color: #000; font-size: 32px; font-weight: 700; padding: 8px 18px; border-radius: 10px;}
</style>"""


def duration(delta: dt.timedelta) -> str:
    """A short length of time: 45 s, 12 min, 3 h 05 min, 2 d 4 h."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


def glyph(mark: str) -> str:
    return f'<span class="ab-glyph">{mark}</span>'


def severity_tag(severity: str) -> str:
    """A severity by shape, word and colour: ✕ CRITICAL, ▲ HIGH, ● MEDIUM, ○ LOW."""
    colour = SEVERITY_COLOUR.get(severity, "#8b949e")
    return (f'<span style="color:{colour};font-weight:800">{glyph(SEVERITY_MARK.get(severity, "?"))} '
            f'{ui.h(severity.upper())}</span>')


def banner(critical: dict, at: dt.datetime) -> str:
    """The critical alerts nobody has acknowledged: a red banner, there until one is acknowledged."""
    first = critical["shown"][0]
    more = critical["total"] - 1
    return (f'<div class="ab-banner" data-testid="wall-critical" data-count="{critical["total"]}">'
            f'{glyph("✕")} NEW CRITICAL ALERT — {ui.h(first["rule"])}: {ui.h(first["summary"][:90])} · '
            f'{duration(at - first["first_seen"])} ago, not acknowledged'
            + (f' · +{more} more critical' if more > 0 else "") + "</div>")


def header(at: dt.datetime, run: dict | None) -> str:
    sim = ""
    if run and run.get("simulated"):
        sim = (f'<span class="ab-sim" data-testid="wall-simulated"><span>SIMULATED · '
               f'{ui.h(run.get("simulated_label") or "demo")}</span></span>')
    return f'<div class="ab-wall"><h1>SOC 2 posture · {at:%H:%M} UTC{sim}</h1></div>'


def tile(t: dict) -> str:
    """A category tile: status by glyph and word, criteria passing, failing findings with the change
    since yesterday (arrow and number), and the critical and high ones."""
    mark, word = ui.GLYPH[t["colour"]]
    if t["delta"] is None:
        change = "no run yesterday"
    elif t["delta"] > 0:
        change = f'{glyph("▲")} {t["delta"]} since yesterday'
    elif t["delta"] < 0:
        change = f'{glyph("▼")} {-t["delta"]} since yesterday'
    else:
        change = f'{glyph("=")} 0 since yesterday'
    return (f'<div class="ab-tile" data-tile="{ui.h(t["category"])}" data-colour="{t["colour"]}" '
            f'data-status="{word}" data-delta="{"" if t["delta"] is None else t["delta"]}" '
            f'style="background:{ui.TILE_COLOUR[t["colour"]]}">'
            f'<div class="name">{ui.h(t["category"].replace("-", " "))}</div>'
            f'<div class="state">{glyph(mark)} {word}</div>'
            f'<div class="big">{t["PASS"]}/{t["criteria"]}</div>'
            f'<div class="small" data-testid="tile-failing">{t["failing"]} failing · {change}</div>'
            f'<div class="small" data-testid="tile-severe">critical {t["critical"]} · high {t["high"]}</div></div>')


def alert_rows(alerts: dict, at: dt.datetime) -> list[str]:
    """The open alerts' heading (their count, by severity) and rows, and "+N more" when cut."""
    counts = " · ".join(f"{s} {alerts['by_severity'][s]}" for s in ui.SEVERITY_ORDER if alerts["by_severity"].get(s))
    out = [f'<div class="ab-head" data-testid="wall-alerts" data-total="{alerts["total"]}">'
           f'{alerts["total"]} active alerts' + (f' <span class="ab-more">({ui.h(counts)})</span>' if counts else "")
           + "</div>"]
    for a in alerts["shown"]:
        out.append(f'<div class="ab-row" data-alert="{a["id"]}" data-severity="{ui.h(a["severity"])}">'
                   f'{severity_tag(a["severity"])} <span class="ab-age">{duration(at - a["first_seen"])}</span> '
                   f'{ui.h(a["rule"])} — {ui.h(a["summary"][:120])}</div>')
    if alerts["more"] > 0:
        out.append(f'<div class="ab-row ab-more" data-testid="wall-alerts-more">+{alerts["more"]} more</div>')
    return out


def incident_rows(incidents: dict) -> list[str]:
    """The active incidents' heading and rows: age, assignee, SLA countdown; a breach stands out."""
    out = [f'<div class="ab-head" data-testid="wall-incidents" data-total="{incidents["total"]}">'
           f'{incidents["total"]} open incidents</div>']
    for i in incidents["shown"]:
        clock = i["clock"]
        if clock["left"] < dt.timedelta(0):
            sla = (f'<span class="ab-breach" data-testid="sla-breached">{glyph("✕")} SLA BREACHED · '
                   f'{clock["stage"]} overdue {duration(clock["left"])}</span>')
        elif clock["breached"]:
            sla = (f'<span class="ab-breach" data-testid="sla-breached">{glyph("✕")} SLA BREACHED · '
                   f'{clock["breached_stage"]} late</span> · {clock["stage"]} due in {duration(clock["left"])}')
        else:
            sla = f'{glyph("◷")} {clock["stage"]} due in {duration(clock["left"])}'
        out.append(f'<div class="ab-row" data-incident="{i["id"]}" data-breached="{str(clock["breached"]).lower()}">'
                   f'{severity_tag(i["severity"])} #{i["id"]} {ui.h(i["status"])} — {ui.h(i["title"][:90])}</div>'
                   f'<div class="ab-row" style="padding-left:40px">{sla} · age {duration(clock["age"])} · '
                   f'{ui.h(i["assignee"] or "unassigned")}</div>')
    if incidents["more"] > 0:
        out.append(f'<div class="ab-row ab-more" data-testid="wall-incidents-more">+{incidents["more"]} more</div>')
    return out
