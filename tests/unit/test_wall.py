"""The wall screen at three metres (AppTest over tests/wall_store.py): alerts most severe then oldest
first, the heading's count agreeing with the list and "+N more" when it is cut; each incident's age,
assignee and SLA countdown, a breach standing out; tiles with the change since yesterday and the
critical/high failures; status by glyph and word; the critical banner staying until the alert is
acknowledged; everything untrusted escaped."""
import datetime as dt
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from auditbook.auth import Actor, PermissionDenied
from auditbook.monitor import alerts
from auditbook.monitor import wall as board
from auditbook.store.db import open_engine
from tests.wall_store import EVIL, build

ENTRY = str(Path(__file__).resolve().parents[2] / "app" / "control_room.py")
SHOWN = 7  # app/views/wall.py ALERT_ROWS
RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@pytest.fixture
def store(tmp_path):
    db = f"sqlite:///{tmp_path}/wall.db"
    made = build(db)
    return {"db": db, "engine": open_engine(db), **made}


@pytest.fixture
def wall(store, monkeypatch):
    monkeypatch.setenv("AUDITBOOK_DB", store["db"])
    monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", "wall")

    def make():
        at = AppTest.from_file(ENTRY, default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return make


def html(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_alerts_are_most_severe_then_oldest_first_and_the_count_matches_the_list(wall, store):
    open_alerts = alerts.list_alerts(store["engine"], ("firing", "acknowledged"))
    expected = sorted(open_alerts, key=lambda a: (RANK[a["severity"]], a["first_seen"], a["id"]))
    text = html(wall())
    heading = re.search(r'data-testid="wall-alerts" data-total="(\d+)">(\d+) active alerts', text)
    listed = [int(i) for i in re.findall(r'data-alert="(\d+)"', text)]
    more = re.search(r'data-testid="wall-alerts-more">\+(\d+) more<', text)
    assert len(open_alerts) == 11  # nine fired + two regressions; the resolved one is not open
    assert heading and int(heading.group(1)) == int(heading.group(2)) == len(open_alerts)
    assert listed == [a["id"] for a in expected[:SHOWN]]
    assert more and int(more.group(1)) == len(open_alerts) - SHOWN == int(heading.group(1)) - len(listed)
    assert "critical 1 · high 4 · medium 3 · low 3" in text


def test_no_more_line_when_every_alert_fits(store):
    shown = board.board(store["engine"], alerts=50)
    assert shown["alerts"]["more"] == 0 and len(shown["alerts"]["shown"]) == shown["alerts"]["total"] == 11


def test_tiles_show_the_change_since_yesterday_and_the_critical_and_high_failures(wall):
    text = html(wall())
    security = re.search(r'<div class="ab-tile" data-tile="security"[^>]*>.*?</div></div>', text, re.S).group(0)
    availability = re.search(r'<div class="ab-tile" data-tile="availability"[^>]*>.*?</div></div>', text, re.S).group(0)
    # security: sg-a1 and sg-b2 failing yesterday, sg-a1, sg-b1 and sg-b2 today (all high)
    assert 'data-delta="1"' in security and "3 failing" in security and "▲</span> 1 since yesterday" in security
    assert "critical 0 · high 3" in security
    # availability: the bucket's versioning failed yesterday and passes today
    assert 'data-delta="-1"' in availability and "▼</span> 1 since yesterday" in availability
    assert "0 failing" in availability


def test_status_is_shown_by_glyph_and_word_as_well_as_colour(wall):
    text = html(wall())
    for colour, (glyph, word) in {"red": ("✕", "FAILING"), "amber": ("!", "ATTENTION"),
                                  "green": ("✓", "OK")}.items():
        for tile in re.findall(rf'<div class="ab-tile"[^>]*data-colour="{colour}".*?</div></div>', text, re.S):
            assert f'data-status="{word}"' in tile and f'class="state"><span class="ab-glyph">{glyph}</span> {word}' in tile
    assert re.search(r'data-colour="red"', text)  # the store has failures: at least one red tile
    assert '<span class="ab-glyph">▲</span> HIGH' in text and '<span class="ab-glyph">✕</span> CRITICAL' in text


def test_incidents_show_age_assignee_and_sla_countdown_and_a_breach_stands_out(wall, store):
    text = html(wall())
    assert 'data-testid="wall-incidents" data-total="2">2 open incidents' in text
    breached = store["incidents"]["breached"]
    on_time = store["incidents"]["on_time"]
    row = re.search(rf'data-incident="{breached}" data-breached="true">.*?</div><div[^>]*>(.*?)</div>', text, re.S)
    assert row and ("age 3 h 00 min" in row.group(1) or "age 2 h 59 min" in row.group(1))
    assert 'class="ab-breach" data-testid="sla-breached"' in row.group(1) and "SLA BREACHED" in row.group(1)
    assert "unassigned" in row.group(1) and "acknowledge overdue 2 h 45 min" in row.group(1)
    row = re.search(rf'data-incident="{on_time}" data-breached="false">.*?</div><div[^>]*>(.*?)</div>', text, re.S)
    assert row and "SLA BREACHED" not in row.group(1) and "acknowledge due in 23 h" in row.group(1)
    assert "bob &lt;img src=x onerror=alert(1)&gt;" in row.group(1)
    assert text.index(f'data-incident="{breached}"') < text.index(f'data-incident="{on_time}"')  # critical first


def test_a_critical_alert_keeps_the_banner_until_it_is_acknowledged(wall, store):
    at = wall()
    banner = [m.value for m in at.markdown if 'data-testid="wall-critical"' in m.value]
    assert len(banner) == 1 and "NEW CRITICAL ALERT — RootAccountUsage" in banner[0]
    assert "&lt;img src=x" in banner[0] and EVIL not in banner[0]
    at.run()  # still there on the next refresh: nobody has acknowledged it
    assert any('data-testid="wall-critical"' in m.value for m in at.markdown)
    critical = alerts.get(store["engine"], store["alerts"]["RootAccountUsage"])
    alerts.acknowledge(store["engine"], Actor("ana@soc.example", "analyst"), critical["id"], critical["version"])
    at.run()
    assert not at.exception
    assert not any('data-testid="wall-critical"' in m.value for m in at.markdown)
    assert 'data-testid="wall-alerts" data-total="11"' in html(at)  # acknowledged, still open: still listed


def test_the_wall_role_sees_the_wall_alone_and_can_change_nothing(wall, store):
    at = wall()
    assert at.session_state["ab_pages"] == ["wall"]
    assert not at.button and not at.text_input and not at.selectbox and not at.dataframe
    critical = alerts.get(store["engine"], store["alerts"]["RootAccountUsage"])
    with pytest.raises(PermissionDenied):
        alerts.acknowledge(store["engine"], Actor("wall screen", "wall"), critical["id"], critical["version"])


def test_untrusted_strings_on_the_wall_are_escaped(wall):
    text = html(wall())
    assert "<img src=x" not in text
    assert "root signed in from &lt;img src=x onerror=alert(1)&gt;" in text
    assert "Tag drift &lt;img src=x onerror=alert(1)&gt;" in text


def test_demo_data_is_labelled_simulated_on_the_wall(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path}/demo.db"
    build(db, simulated="demo quarter")
    monkeypatch.setenv("AUDITBOOK_DB", db)
    monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", "wall")
    at = AppTest.from_file(ENTRY, default_timeout=60)
    at.run()
    assert any('data-testid="wall-simulated"><span>SIMULATED · demo quarter' in m.value for m in at.markdown)


def test_durations_read_at_a_glance():
    import sys
    sys.path.insert(0, str(Path(ENTRY).parent))
    import wall_parts
    assert [wall_parts.duration(dt.timedelta(seconds=s)) for s in (45, 720, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] \
        == ["45 s", "12 min", "3 h 05 min", "2 d 4 h"]
    assert wall_parts.duration(dt.timedelta(minutes=-90)) == "1 h 30 min"
