"""Deviations in the control room and on the command line (issue 14 §5): `auditbook deviations list`
and `respond` (exit 2 and one line for bad input, nothing written), and the Deviations page (an
analyst responds against the version seen; a viewer sees the table and no form; hostile text shown
escaped)."""
import json
import re
from pathlib import Path

import pytest

from auditbook.auth import Actor
from auditbook.history.deviations import deviations, respond, response_trail
from tests.conftest import CliResult, run_main
from tests.unit.test_deviations import EVIL, FIELDS, Q3, build_store

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.fixture
def store(tmp_path):
    return build_store(tmp_path)


@pytest.fixture
def cli(monkeypatch, capsys, store):
    """`auditbook ARGS --db … --catalog …` through cli.main.main (exit codes and one-line errors)."""
    monkeypatch.setattr("auditbook.auth.login_name", lambda: "kim")

    return lambda *args: CliResult(*run_main(capsys, monkeypatch, "deviations", *args, "--db", str(store["engine"].url),
                                             "--catalog", str(store["catalog"].path), width=None))


def test_cli_lists_and_responds(cli, store):
    listed = cli("list", "--period", "2026Q3", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    found = json.loads(listed.stdout)
    dev = next(d for d in found if d["kind"] == "failure" and d["resource_name"] == "sg-new")
    assert dev["response_text"] == "no management response"
    done = cli("respond", dev["id"], "--period", "2026Q3", "--root-cause", EVIL, "--response", "closed it",
               "--ticket", "CHG-7", "--remediated-on", "2026-07-04", "--version", "0")
    assert done.exit_code == 0, done.stderr
    assert f"deviation {dev['id']}: response version 1 recorded by kim (cli)" in done.stdout
    table = cli("list", "--period", "2026Q3", "--criterion", "CC6.6")
    assert table.exit_code == 0 and "closed it" in table.stdout and "kim (cli)" in table.stdout
    (after,) = [d for d in json.loads(cli("list", "--period", "2026Q3", "--format", "json").stdout) if d["id"] == dev["id"]]
    assert after["response"]["root_cause"] == EVIL and after["response"]["responded_role"] == "analyst"


@pytest.mark.parametrize("args, message", [
    (["list", "--period", "2026Q5"], "--period"),
    (["list", "--period", "2026Q3", "--criterion", "CC9.9"], "--criterion: 'CC9.9' is not a criterion"),
    (["respond", "zz", "--period", "2026Q3", "--root-cause", "c", "--response", "r", "--version", "0"],
     "is not a deviation id"),
    (["respond", "0123456789abcdef", "--period", "2026Q3", "--root-cause", "c", "--response", "r", "--version", "0"],
     "is not a deviation of 2026Q3"),
    (["respond", "ID", "--period", "2026Q3", "--root-cause", "c", "--response", "r", "--version", "0",
      "--remediated-on", "tomorrow"], "--remediated-on: 'tomorrow' is not a date"),
    (["respond", "ID", "--period", "2026Q3", "--root-cause", " ", "--response", "r", "--version", "0"],
     "--root-cause: required"),
    (["respond", "ID", "--period", "2026Q3", "--root-cause", "c", "--response", "r", "--version", "3"],
     "changed since it was read (version 3, now 0)"),
    (["respond", "ID", "--period", "2026Q3", "--root-cause", "c", "--response", "r", "--version", "0",
      "--existed-at-start", "no"], "--existed-reason: required"),
])
def test_cli_bad_input_is_exit_2_and_one_line(cli, store, args, message):
    ident = deviations(store["engine"], store["catalog"], Q3)[0]["id"]
    done = cli(*[ident if a == "ID" else a for a in args])
    assert done.exit_code == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert response_trail(store["engine"], ident) == []


# -- the page ------------------------------------------------------------------------------------------

@pytest.fixture
def page(store, monkeypatch):
    import importlib

    from streamlit.testing.v1 import AppTest
    monkeypatch.syspath_prepend(str(APP))
    ui = importlib.import_module("ui")

    def make(actor: Actor):
        at = AppTest.from_file(str(APP / "views" / "deviations.py"), default_timeout=60)
        at.session_state["ab_ctx"] = ui.Context(actor, "oidc", str(store["engine"].url), store["engine"],
                                                store["catalog"])
        at.run()
        at.text_input[0].input("2026Q3")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return make


def _texts(at) -> str:
    return " ".join(str(e.value) for e in (*at.markdown, *at.caption, *at.error, *at.success, *at.warning))


def test_page_an_analyst_responds(page, store):
    at = page(Actor(f"ana {EVIL.splitlines()[0]}", "analyst"))
    frame = at.dataframe[0].value
    assert set(frame["response"]) == {"no management response"} and "failure" in set(frame["kind"])
    ident = at.selectbox[1].value
    areas = {a.label: a for a in at.text_area}
    areas["Root cause"].input(EVIL)
    areas["Management response"].input("accepted; fixed the same day")
    at.text_input[1].input("<b>T-9</b>")
    next(b for b in at.button if b.label == "Save response").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (dev,) = [d for d in deviations(store["engine"], store["catalog"], Q3) if d["id"] == ident]
    assert (dev["response"]["root_cause"], dev["response"]["ticket"]) == (EVIL, "<b>T-9</b>")
    assert dev["response"]["version"] == 1
    assert not re.search(r"(?<!\\)<", _texts(at))  # text is shown escaped, never as markup
    assert at.dataframe[0].value.set_index("id").loc[ident, "response"] == "accepted; fixed the same day"


def test_page_a_save_against_an_older_version_is_refused(page, store):
    at = page(Actor("ana@corp.example", "analyst"))
    ident = at.selectbox[1].value
    respond(store["engine"], Actor("other@corp.example", "admin"), ident, 0, catalog=store["catalog"], period=Q3,
            **FIELDS)  # someone else, after this page was rendered
    areas = {a.label: a for a in at.text_area}
    areas["Root cause"].input("mine")
    areas["Management response"].input("mine")
    next(b for b in at.button if b.label == "Save response").click()
    at.run()
    assert "changed since it was read" in " ".join(e.value for e in at.error)
    (dev,) = [d for d in deviations(store["engine"], store["catalog"], Q3) if d["id"] == ident]
    assert dev["response"]["responded_by"] == "other@corp.example" and dev["response"]["version"] == 1


@pytest.mark.parametrize("role", ["viewer", "auditor", "approver"])
def test_page_without_the_permission_shows_the_table_and_no_form(page, role):
    at = page(Actor(f"{role}@corp.example", role))
    assert len(at.dataframe[0].value) > 0
    assert not [b for b in at.button if b.label == "Save response"] and not at.text_area
