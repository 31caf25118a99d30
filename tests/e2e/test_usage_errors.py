"""Every usage mistake, run through the real console script: exit code 2 and a short message on
stderr (the usage line for click's own errors, else one `error:` line) naming the option, file,
field or value; never a traceback, never a store created or a file half-written.

AWS calls, if any were made by mistake, go to a closed port on 127.0.0.1 (AWS_ENDPOINT_URL), and the
instance metadata service is off: these tests never leave the machine."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from auditbook.catalog.model import DEFAULT_PATH
from auditbook.store.db import open_engine
from tests.catalog_edits import write_catalog

BIN = str(Path(sys.executable).parent / "auditbook")  # the console script, as installed
OFFLINE = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
           "AWS_DEFAULT_REGION": "us-east-1", "AUDITBOOK_MAX_ATTEMPTS": "1", "AUDITBOOK_CONNECT_TIMEOUT": "1",
           "COLUMNS": "250"}
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def run(args, cwd, credentials=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUDITBOOK_"))}
    env.update(OFFLINE, **(FAKE_CREDENTIALS if credentials else {}))
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def assert_usage_error(proc, *expected, max_lines=4):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert 1 <= len(lines) <= max_lines, proc.stderr
    for text in expected:
        assert text in proc.stderr, (text, proc.stderr)


# click's own usage errors: usage line, hint, "Error: ..." (4 lines)
@pytest.mark.parametrize("args,expected", [
    (["findings", "--format", "xml"], ["--format", "'xml'"]),
    (["scan", "--workers", "0"], ["--workers"]),
    (["findings", "--bogus"], ["No such option: --bogus"]),
    (["packet", "--period", "2026Q1", "--signer", "ed25519:k"], ["Missing option '--out'"]),
    (["evidence", "add"], ["Missing argument 'CRITERION'"]),
    (["nosuch"], ["No such command 'nosuch'"]),
    (["runbook", "deactivate-access-key", "--user", "u", "--key", "k", "--incident", "9" * 20], ["--incident"]),
    (["exporter", "--port", "70000"], ["--port"]),
    (["watch", "--interval", "99999999999"], ["--interval"]),
])
def test_click_usage_errors_are_short_and_exit_2(tmp_path, args, expected):
    proc = run(args, tmp_path)
    assert_usage_error(proc, *expected)
    assert proc.stderr.strip().splitlines()[0].startswith("Usage: auditbook")
    assert not (tmp_path / "var").exists()  # nothing created


def _catalog(tmp_path, **top):
    return write_catalog(tmp_path, lambda raw: raw.update(top))  # with the library it includes


def _text(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


ENTRY = ("exceptions:\n  - id: EX-1\n    check: {check}\n    owner: alice\n    approver: ciso\n"
         "    justification: rebuilt from git on every deploy\n    expires: {expires}\n")


# impossible dates in every loader: one line naming the file and the field
@pytest.mark.parametrize("case", ["catalog", "accounts", "exceptions", "exceptions-month", "rules"])
def test_impossible_dates_are_one_line_naming_file_and_field(tmp_path, case):
    if case == "catalog":
        path = _catalog(tmp_path)
        path.write_text(path.read_text().replace("version: 1", "version: 2026-02-30", 1))
        args, expected = ["validate", "--catalog", str(path)], ["field version", "2026-02-30"]
    elif case == "accounts":
        path = _text(tmp_path, "accounts.yaml", "accounts:\n  - id: 2026-02-30\n")
        args, expected = ["scan", "--accounts", str(path)], ["accounts[0]", "field id", "2026-02-30"]
    elif case.startswith("exceptions"):
        day = "2026-02-30" if case == "exceptions" else "2026-13-45"
        path = _text(tmp_path, "exceptions.yaml", ENTRY.format(check="s3-versioning", expires=day))
        args, expected = ["exceptions", "list", "--file", str(path)], ["exception EX-1", "field expires", day]
    else:
        path = _text(tmp_path, "alerts.yml", "groups:\n  - name: g\n    rules:\n      - alert: Abc\n"
                     "        expr: check_regressed()\n        for: 2026-02-30\n"
                     "        labels: {severity: high, soc2_control: CC7.2}\n        annotations: {summary: something}\n")
        args, expected = ["watch", "--once", "--rules", str(path)], ["rule Abc", "for", "2026-02-30"]
    proc = run(args, tmp_path)
    assert_usage_error(proc, str(path), *expected, max_lines=1)


def test_a_date_the_register_accepted_before_is_still_accepted(tmp_path):
    path = _text(tmp_path, "exceptions.yaml", ENTRY.format(check="s3-versioning", expires="2027-01-31 10:00:00"))
    proc = run(["exceptions", "list", "--file", str(path)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2027-01-31" in proc.stdout


@pytest.mark.parametrize("args,expected", [
    (["packet", "--period", "0000Q1", "--out", "p", "--signer", "ed25519:k"], ["--period", "0000Q1"]),
    (["packet", "--period", "9999Q4", "--out", "p", "--signer", "ed25519:k"], ["--period", "9999Q4"]),
    (["packet", "--from", "0001-01-01", "--to", "9999-12-31", "--out", "p", "--signer", "ed25519:k"],
     ["--from", "0001-01-01"]),
    (["packet", "--from", "2001-01-01", "--to", "2026-12-31", "--out", "p", "--signer", "ed25519:k"],
     ["--to", "days"]),
])
def test_out_of_range_periods(tmp_path, args, expected):
    assert_usage_error(run(args, tmp_path), *expected, max_lines=1)


def test_run_id_beyond_64_bits(tmp_path):
    db = f"sqlite:///{tmp_path}/s.db"
    open_engine(db)
    for run_id in ("9" * 20, str(2**63), "١٢"):  # too big for any store; digits that are not 0-9
        assert_usage_error(run(["findings", "--run", run_id, "--db", db], tmp_path), "--run", max_lines=1)


def test_rule_window_out_of_range(tmp_path):
    text = DEFAULT_PATH.with_name("alerts.yml").read_text().replace("[5m]", "[99999999999999d]", 1)
    path = _text(tmp_path, "alerts.yml", text)
    proc = run(["watch", "--once", "--rules", str(path)], tmp_path)
    assert_usage_error(proc, str(path), "rule UnauthorizedDataAccess", "window", "99999999999999d", max_lines=1)


def test_read_commands_never_create_a_store(tmp_path):
    for args in (["findings"], ["alerts"], ["evidence", "list"], ["export", "securityhub"], ["exporter", "--port", "0"],
                 ["runbook", "disable-console-login", "--user", "u", "--incident", "1"]):
        proc = run([*args, "--db", f"sqlite:///{tmp_path}/missing/none.db"], tmp_path)
        assert_usage_error(proc, "no store at", "none.db", max_lines=1)
    assert not (tmp_path / "missing").exists()
    proc = run(["findings"], tmp_path)  # the default store, var/auditbook.db
    assert_usage_error(proc, "no store at", max_lines=1)
    assert not (tmp_path / "var").exists()


def test_a_file_that_is_not_a_database(tmp_path):
    path = _text(tmp_path, "notes.txt", "not a database, just some notes\n" * 100)
    for args in (["findings"], ["scan"]):
        proc = run([*args, "--db", f"sqlite:///{path}"], tmp_path)
        assert_usage_error(proc, "--db", "file is not a database", max_lines=1)
    assert path.read_text().startswith("not a database")


def test_a_read_only_store_is_refused_before_collecting(tmp_path):
    open_engine(f"sqlite:///{tmp_path}/s.db")
    read_only = f"sqlite:///file:{tmp_path}/s.db?mode=ro&uri=true"
    proc = run(["scan", "--db", read_only], tmp_path)
    assert_usage_error(proc, "--db", "cannot write", "readonly", max_lines=1)
    assert "collecting" not in proc.stderr and "API calls" not in proc.stdout
    doc = _text(tmp_path, "minutes.txt", "minutes")
    proc = run(["evidence", "add", "CC1.2", str(doc), "--item", "Board charter", "--owner", "chair",
                "--effective-date", "2026-01-05", "--db", read_only], tmp_path)
    assert_usage_error(proc, "cannot write", max_lines=1)


@pytest.fixture
def unwritable(tmp_path):
    """A folder nobody may create files in."""
    if os.geteuid() == 0:  # root ignores file modes; sysfs refuses new files to everyone
        folder = Path("/sys")
        if not folder.is_dir():
            pytest.skip("no folder that root cannot write to")
        return folder
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    return folder


def test_unwritable_keygen_out(tmp_path, unwritable):
    proc = run(["keygen", "--out", str(unwritable / "signing")], tmp_path)
    assert_usage_error(proc, "--out", "cannot write", str(unwritable / "signing"), max_lines=1)
    assert not (unwritable / "signing.key").exists() and not (unwritable / "signing.pub").exists()


def test_unwritable_exception_register(tmp_path, unwritable):
    register = unwritable / "auditbook-exceptions.yaml"
    proc = run(["exceptions", "add", "EX-1", "--check", "s3-versioning", "--owner", "alice", "--approver", "ciso",
                "--justification", "rebuilt from git on every deploy", "--expires", "2099-01-01",
                "--file", str(register)], tmp_path)
    assert_usage_error(proc, str(register), "cannot write", max_lines=1)
    assert not register.exists()


def test_validate_refuses_a_check_function_of_the_wrong_arity(tmp_path):
    path = _catalog(tmp_path)
    raw = yaml.safe_load(path.read_text())
    check = next(c for c in raw["checks"] if c["id"] == "s3-versioning")
    check.pop("expect")
    check["function"] = "two_args"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    script = ("import sys\nfrom auditbook.catalog.functions import CHECK_FUNCTIONS\n"
              "CHECK_FUNCTIONS['two_args'] = lambda record, context: True  # registered by a plugin\n"
              "from auditbook.cli.main import main\nsys.argv = ['auditbook', 'validate', '--catalog', sys.argv[1]]\nmain()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUDITBOOK_"))}
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert_usage_error(proc, str(path), "check s3-versioning", "field function", "two_args", max_lines=1)


def test_validate_refuses_an_expression_function_of_the_wrong_arity(tmp_path):
    path = _catalog(tmp_path)
    raw = yaml.safe_load(path.read_text())
    next(c for c in raw["checks"] if c["id"] == "s3-versioning")["applies"] = "days_since(Name, Name) > `1`"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = run(["validate", "--catalog", str(path)], tmp_path)
    assert_usage_error(proc, str(path), "check s3-versioning", "field applies", "days_since() takes 1", max_lines=1)


def test_posture_rule_of_the_wrong_arity(tmp_path):
    text = DEFAULT_PATH.with_name("alerts.yml").read_text()
    assert "posture(" in text
    path = _text(tmp_path, "alerts.yml", text + (
        '      - alert: WrongArity\n        expr: posture("aws.kms.key", "days_since(KeyId, KeyId) > `90`")\n'
        '        labels: {severity: low, soc2_control: CC6.1}\n        annotations: {summary: never fires}\n'))
    proc = run(["watch", "--once", "--rules", str(path)], tmp_path)
    assert_usage_error(proc, str(path), "rule WrongArity", "days_since() takes 1", max_lines=1)


def test_scan_refuses_an_exception_for_an_unknown_check(tmp_path):
    path = _text(tmp_path, "exceptions.yaml", ENTRY.format(check="no-such-check", expires="2099-01-01"))
    proc = run(["scan", "--exceptions", str(path), "--db", f"sqlite:///{tmp_path}/s.db"], tmp_path)
    assert_usage_error(proc, str(path), "exception EX-1", "field check", "no-such-check", max_lines=1)
    assert not (tmp_path / "s.db").exists()  # refused before the store was touched


@pytest.fixture
def incident_store(tmp_path):
    from auditbook.auth import Actor
    from auditbook.monitor import incidents
    db = f"sqlite:///{tmp_path}/inc.db"
    engine = open_engine(db)
    analyst = Actor("ana", "analyst")
    active = incidents.create(engine, analyst, title="Leaked key", severity="high")
    closed = incidents.create(engine, analyst, title="Old one", severity="low")
    incidents.update(engine, analyst, closed["id"], closed["version"], status="resolved")
    return db, active["id"], closed["id"]


def test_runbook_dry_run_without_aws_credentials(tmp_path, incident_store):
    db, active, _ = incident_store
    proc = run(["runbook", "deactivate-access-key", "--user", "leaky", "--key", "AKIAEXAMPLE",
                "--incident", str(active), "--db", db], tmp_path, credentials=False)
    assert_usage_error(proc, "--user", "leaky", "credentials", max_lines=1)


def test_runbook_on_an_incident_no_longer_active(tmp_path, incident_store):
    db, _, closed = incident_store
    proc = run(["runbook", "deactivate-access-key", "--user", "leaky", "--key", "AKIAEXAMPLE",
                "--incident", str(closed), "--db", db, "--yes"], tmp_path)
    assert_usage_error(proc, f"incident {closed} is resolved", max_lines=1)


@pytest.mark.parametrize("args,expected", [
    (["--regions", "us east"], "--regions: 'us east'"),
    (["--regions", ","], "--regions"),
    (["--accounts", "{accounts}"], "accounts[0] (id 12345) field id"),
])
def test_scan_checks_every_input_before_the_store_or_aws(tmp_path, args, expected):
    accounts = _text(tmp_path, "accounts.yaml", "accounts:\n  - id: '12345'\n")
    args = [a.format(accounts=accounts) for a in args]
    proc = run(["scan", *args, "--db", f"sqlite:///{tmp_path}/s.db"], tmp_path)
    assert_usage_error(proc, expected, max_lines=1)
    assert not (tmp_path / "s.db").exists()


# --- the store URL: a secret in any spelling never reaches output or errors; no read creates a file ----

@pytest.mark.parametrize("url", [
    "postgresql://127.0.0.1:9/db?password=S3CretG",  # libpq and SQLAlchemy send it as the password
    "postgresql://u@127.0.0.1:9/db?sslpassword=S3CretH&sslmode=disable",
    "postgresql://u:S3C/RETE@127.0.0.1:port/db",  # a port that is not a number (was a traceback)
    "postgresql://u:S3C@RETB@127.0.0.1:9/db",  # an unencoded "@" in the password
    "postgresql://u:S3CretD@127.0.0.1:9/db?password=S3CretI&bogus=1",
])
def test_store_url_secrets_never_reach_the_output_or_errors(tmp_path, url):
    for args in (["findings"], ["scan"], ["evidence", "list"]):
        proc = run([*args, "--db", url], tmp_path)
        assert_usage_error(proc, "--db", max_lines=1)
        assert "S3C" not in proc.stdout + proc.stderr and "RET" not in proc.stdout + proc.stderr, proc.stderr


def test_a_read_command_never_creates_a_store_with_uri_true(tmp_path):
    for url in (f"sqlite:///{tmp_path}/new.db?uri=true", f"sqlite:///file:{tmp_path}/new.db?uri=true&mode=rwc"):
        assert_usage_error(run(["findings", "--db", url], tmp_path), "no store at", "new.db", max_lines=1)
    assert list(tmp_path.iterdir()) == []


# --- keys and signers: checked before anything runs, one line each ------------------------------------

@pytest.mark.parametrize("prefix", ["", "keys/", "keys", ".", "keys/.."])
def test_keygen_refuses_an_empty_or_folder_prefix(tmp_path, prefix):
    (tmp_path / "keys").mkdir()
    assert_usage_error(run(["keygen", "--out", prefix], tmp_path), "--out", "not a file name prefix", max_lines=1)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["keys"]  # no hidden .key / .pub anywhere


@pytest.mark.parametrize("key, region, expected", [
    ("arn:x", "us-east-1", "is not a KMS key ARN"),
    ("arn:aws:kms:us east-1:123456789012:key/abc", "us-east-1", "is not a KMS key ARN"),
    ("key id with spaces", "us-east-1", "is not a KMS key ARN"),
    ("alias/audit", None, "region"),  # no region configured and none in the key
    ("alias/audit", "us east-1", "alias/audit"),  # a malformed configured region
])
def test_kms_key_mistakes_are_one_line_before_any_work(tmp_path, key, region, expected):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUDITBOOK_"))}
    env.update(OFFLINE, **FAKE_CREDENTIALS)
    env.pop("AWS_DEFAULT_REGION")
    if region:
        env["AWS_DEFAULT_REGION"] = region
    (tmp_path / "packet").mkdir()
    for args, option in ((["verify", "packet", "--kms", key], "--kms"),
                         (["packet", "--period", "2026Q1", "--out", "out", "--signer", f"kms:{key}",
                           "--db", f"sqlite:///{tmp_path}/none.db"], "--signer")):
        proc = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
        assert_usage_error(proc, option, expected, max_lines=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packet"]  # no store, no packet folder


# --- collectors-doc reads its file like every other input -------------------------------------------

def test_collectors_doc_reads_a_regular_bounded_file_with_its_section(tmp_path):
    fifo = tmp_path / "fifo.md"
    os.mkfifo(fifo)  # reading it would block for ever
    plain = _text(tmp_path, "plain.md", "# Collectors\n\nno generated section here\n")
    for path, expected in ((fifo, "not a regular file"), (Path("/dev/zero"), "not a regular file"),
                           (plain, "no '## Resource types' section"), (tmp_path / "missing.md", "cannot read")):
        assert_usage_error(run(["collectors-doc", str(path)], tmp_path), str(path), expected, max_lines=1)
    last = _text(tmp_path, "last.md", "# Collectors\n\n## Resource types\n\nstale-section-text\n")  # the section ends the file
    proc = run(["collectors-doc", str(last)], tmp_path)
    assert proc.returncode == 0 and "stale-section-text" not in proc.stdout and "### `aws.s3.bucket`" in proc.stdout


def test_a_store_path_through_a_symlink_loop_is_one_line(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for url in ("sqlite:///loop/store.db", "sqlite:///file:loop/store.db?uri=true"):
        for args in (["app"], ["lab"], ["findings"]):
            assert_usage_error(run([*args, "--db", url], tmp_path), "no store at", "loop/store.db", max_lines=1)


def test_a_store_url_that_is_not_utf8_is_one_line_and_keeps_its_password(tmp_path):
    for raw in (b"sqlite:////tmp/x/bad\xff.db", b"sqlite:///file:bad\xff.db?uri=true",
                b"postgresql://bob:hunter2@h\xff/db"):
        for args in (["app"], ["lab"], ["findings"]):
            proc = run([*args, "--db", os.fsdecode(raw)], tmp_path)
            assert_usage_error(proc, "not UTF-8", max_lines=1)
            assert "hunter2" not in proc.stdout + proc.stderr
