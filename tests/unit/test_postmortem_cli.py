"""`auditbook incidents list|show|update` through the command line's own main() (exit codes and the
one-line errors as a user sees them), in-process: every input checked before anything is written."""
import hashlib
import json
import os

import pytest

from auditbook.auth import Actor
from auditbook.monitor import incidents
from tests.conftest import run_main

ANALYST = Actor("ana", "analyst")


@pytest.fixture
def store(tmp_path):
    from auditbook.store.db import open_engine
    db = f"sqlite:///{tmp_path}/s.db"
    engine = open_engine(db)
    inc = incidents.create(engine, ANALYST, title="Root \x1b[31msign-in [bold]x[/bold]", severity="critical")
    inc = incidents.update(engine, ANALYST, inc["id"], inc["version"], status="resolved")
    return {"db": db, "engine": engine, "id": inc["id"], "root": tmp_path}


run = run_main  # `auditbook ARGS` in-process: (exit code, stdout, stderr)


def test_update_fills_the_post_mortem_and_closes(store, capsys, monkeypatch):
    note = store["root"] / "cloudtrail-extract.json"
    note.write_bytes(b'{"eventName": "ConsoleLogin"}')
    code, out, err = run(capsys, monkeypatch, "incidents", "update", str(store["id"]), "--status", "closed",
                         "--root-cause", "Root credentials were shared in a wiki page.",
                         "--lessons", "Root is locked in a safe; alarms on root sign-in.",
                         "--category", "credential compromise", "--customers-affected", "0",
                         "--customer-notice", "no", "--regulator-notice", "yes", "--regulator-notified-on", "2026-01-05",
                         "--action", "kim|2026-12-01|Rotate the root password", "--action", "lee|2026-12-15|Enable MFA",
                         "--attach", str(note), "--db", store["db"])
    assert code == 0, err
    assert f"incident {store['id']}: closed" in out and "2 action items added" in out
    assert "attached cloudtrail-extract.json" in out
    found = incidents.detail(store["engine"], store["id"])
    assert (found["status"], found["category"], found["customers_affected"]) == ("closed", "credential compromise", 0)
    assert (found["customer_notice_required"], found["regulator_notice_required"]) == (False, True)
    assert [(a["owner"], str(a["due_on"])) for a in found["actions"]] == [("kim", "2026-12-01"), ("lee", "2026-12-15")]
    assert found["attachments"][0]["sha256"] == hashlib.sha256(note.read_bytes()).hexdigest()
    assert all(e["actor"].endswith("(cli)") for e in incidents.timeline(store["engine"], store["id"])[2:])

    code, out, _ = run(capsys, monkeypatch, "incidents", "update", str(store["id"]), "--done",
                       str(found["actions"][0]["id"]), "--db", store["db"])
    assert code == 0 and "1 marked done" in out
    code, out, _ = run(capsys, monkeypatch, "incidents", "show", str(store["id"]), "--format", "json", "--db", store["db"])
    shown = json.loads(out)
    assert shown["root_cause"] == "Root credentials were shared in a wiki page."
    assert shown["actions"][0]["done_at"] and shown["regulator_notified_on"] == "2026-01-05"
    assert [e["action"] for e in shown["timeline"]][-1] == "action done"


def test_closing_without_the_post_mortem_is_one_line_exit_2_and_nothing_saved(store, capsys, monkeypatch):
    note = store["root"] / "a.txt"
    note.write_text("x")
    code, out, err = run(capsys, monkeypatch, "incidents", "update", str(store["id"]), "--status", "closed",
                         "--action", "kim|2026-12-01|Rotate", "--attach", str(note), "--db", store["db"])
    assert code == 2 and out == ""
    assert err == ("error: status: a critical incident is closed only with its root cause and lessons learned; "
                   "missing: root cause and lessons learned (fill in the post-mortem first)\n")
    found = incidents.detail(store["engine"], store["id"])
    assert (found["status"], found["actions"], found["attachments"]) == ("resolved", [], [])


RC = ["--root-cause", "rc"]  # a valid change beside the bad one: it is not saved either


@pytest.mark.parametrize("args,message", [
    ([*RC, "--action", "kim 2026-12-01"], "error: --action: 'kim 2026-12-01' is not OWNER|YYYY-MM-DD|what to do"),
    ([*RC, "--action", "kim|someday|x"], "error: action due date: 'someday' is not a date (YYYY-MM-DD)"),
    ([*RC, "--attach", "missing.txt"], "error: --attach: missing.txt: cannot read: No such file or directory"),
    ([*RC, "--category", "aliens"], "error: category: 'aliens' is not one of unauthorised access"),
    ([*RC, "--customers-notified-on", "2026-13-01"], "error: customers_notified_on: '2026-13-01' is not a date"),
    ([*RC, "--customers-affected", "\u00b2"], "error: customers_affected: '\u00b2' is not a count"),
    ([*RC, "--status", "open"], "error: status: cannot go from resolved to open"),
    ([], "error: incidents update: nothing to change"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(store, capsys, monkeypatch, args, message):
    monkeypatch.chdir(store["root"])
    before = incidents.detail(store["engine"], store["id"])
    code, out, err = run(capsys, monkeypatch, "incidents", "update", str(store["id"]), *args, "--db", store["db"])
    assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert incidents.detail(store["engine"], store["id"]) == before


def test_a_fifo_is_refused_without_blocking(store, capsys, monkeypatch):
    fifo = store["root"] / "pipe"
    os.mkfifo(fifo)
    code, _, err = run(capsys, monkeypatch, "incidents", "update", str(store["id"]), "--attach", str(fifo),
                       "--db", store["db"])
    assert code == 2 and "not a regular file" in err


def test_a_symlink_is_refused_not_followed(store, capsys, monkeypatch):
    secret = store["root"] / "secret.txt"
    secret.write_text("root:$6$hash:19000:0:99999:7:::\n")
    link = store["root"] / "shadowlink"
    link.symlink_to(secret)
    before = incidents.detail(store["engine"], store["id"])
    code, _, err = run(capsys, monkeypatch, "incidents", "update", str(store["id"]), "--attach", str(link),
                       "--db", store["db"])
    assert code == 2 and err.count("\n") == 1 and "shadowlink" in err and "symbolic link" in err, err
    assert incidents.detail(store["engine"], store["id"]) == before


def test_a_stale_version_is_a_conflict_exit_1(store, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "incidents", "update", str(store["id"]), "--root-cause", "x",
                       "--version", "1", "--db", store["db"])
    assert code == 1 and "changed by someone else" in err and "nothing was saved" in err
    assert incidents.get(store["engine"], store["id"])["root_cause"] is None


def test_list_and_show_print_untrusted_text_inertly(store, capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "incidents", "list", "--db", store["db"])
    assert code == 0 and "\x1b" not in out and "needs root cause, lessons learned" in out
    code, out, _ = run(capsys, monkeypatch, "incidents", "show", str(store["id"]), "--db", store["db"])
    assert code == 0 and "\x1b" not in out and "Root  [31msign-in [bold]x[/bold]" in out  # no escape, no markup
    code, _, err = run(capsys, monkeypatch, "incidents", "show", "999", "--db", store["db"])
    assert code == 2 and err == "error: incident: no incident 999\n"
    code, _, err = run(capsys, monkeypatch, "incidents", "list", "--status", "gone", "--db", store["db"])
    assert code == 2 and "--status: 'gone' is not one of open" in err
