"""History as changes of state: unchanged runs add no rows; a change closes one interval and opens
the next; each run's findings can be rebuilt; a gap leaves earlier state open, not closed."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auditbook.errors import UserError
from auditbook.history.findings import findings_for_run
from auditbook.scan import run_scan
from auditbook.store.db import HEAD_REVISION, current_revision, open_engine
from auditbook.store.models import Base, FindingState
from tests.conftest import Fault


def _rows(engine):
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(FindingState))


def _status(rows, check, name):
    return [r["status"] for r in rows if r["check"] == check and r["resource_name"] == name]


def test_history_grows_with_changes_only(aws, tmp_path):
    db = f"sqlite:///{tmp_path}/h.db"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="history-bucket")
    r1 = run_scan(db=db, regions="us-east-1")
    engine = open_engine(db)
    rows_after_1 = _rows(engine)
    r2 = run_scan(db=db, regions="us-east-1")
    assert _rows(engine) == rows_after_1  # nothing changed: no new rows
    s3.put_bucket_versioning(Bucket="history-bucket", VersioningConfiguration={"Status": "Enabled"})
    r3 = run_scan(db=db, regions="us-east-1")
    assert _rows(engine) == rows_after_1 + 1  # exactly one finding changed state
    assert _status(findings_for_run(engine, r1.run_id), "s3-versioning", "history-bucket") == ["FAIL"]
    assert _status(findings_for_run(engine, r2.run_id), "s3-versioning", "history-bucket") == ["FAIL"]
    assert _status(findings_for_run(engine, r3.run_id), "s3-versioning", "history-bucket") == ["PASS"]
    assert len(findings_for_run(engine, r3.run_id)) == len(r3.findings)
    s3.delete_bucket(Bucket="history-bucket")
    r4 = run_scan(db=db, regions="us-east-1")
    assert _status(findings_for_run(engine, r4.run_id), "s3-versioning", "history-bucket") == []
    assert _status(findings_for_run(engine, r3.run_id), "s3-versioning", "history-bucket") == ["PASS"]


def test_gap_run_shows_error_and_keeps_state(aws, tmp_path, inject):
    db = f"sqlite:///{tmp_path}/g.db"
    aws.client("ec2").create_security_group(GroupName="kept", Description="d")
    r1 = run_scan(db=db, regions="us-east-1")
    inject(Fault("DescribeSecurityGroups", "UnauthorizedOperation", 403))
    r2 = run_scan(db=db, regions="us-east-1")
    engine = open_engine(db)
    sg2 = [r for r in findings_for_run(engine, r2.run_id) if r["check"] == "ec2-sg-no-public-ingress"]
    assert [r["status"] for r in sg2] == ["ERROR"]
    sg1 = [r for r in findings_for_run(engine, r1.run_id) if r["check"] == "ec2-sg-no-public-ingress"]
    assert "kept" in [r["resource_name"] for r in sg1] and all(r["status"] != "ERROR" for r in sg1)


def test_run_records_provenance(aws, tmp_path):
    from auditbook.store.models import Run
    db = f"sqlite:///{tmp_path}/p.db"
    result = run_scan(db=db, regions="us-east-1")
    with Session(open_engine(db)) as s:
        run = s.get(Run, result.run_id)
        assert run.tool_version and len(run.catalog_sha256) == 64
        assert run.identities[0]["identity"]["Account"] == "123456789012"
        assert run.parameters["regions"] == ["us-east-1"] and run.api_calls > 0
        assert run.finished_at >= run.started_at


def test_head_revision_constant_is_the_newest_migration(tmp_path):
    from alembic.script import ScriptDirectory

    from auditbook.store.db import HEAD_REVISION, alembic_config, current_revision
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION
    engine = open_engine(f"sqlite:///{tmp_path}/h.db")
    assert current_revision(engine) == HEAD_REVISION


def test_migrations_match_models(tmp_path):
    """A store migrated through every revision (open_engine creates a new one from the models instead:
    tests/unit/test_store_schema.py holds the two to the same schema) has the models' schema."""
    from sqlalchemy import create_engine

    from auditbook.store.db import upgrade
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    upgrade(engine)
    assert current_revision(engine) == HEAD_REVISION
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_evidence_of_a_past_run_is_the_evidence_then(aws, tmp_path):
    from auditbook.history.findings import evidence_body
    db = f"sqlite:///{tmp_path}/ev.db"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="evidence-bucket")
    r1 = run_scan(db=db, regions="us-east-1")
    s3.put_bucket_versioning(Bucket="evidence-bucket", VersioningConfiguration={"Status": "Enabled"})
    r2 = run_scan(db=db, regions="us-east-1")
    engine = open_engine(db)

    def versioning_evidence(run_id):
        row = [r for r in findings_for_run(engine, run_id) if r["check"] == "s3-encryption" or
               (r["check"] == "s3-default-encryption" and r["resource_name"] == "evidence-bucket")][0]
        bodies = [evidence_body(engine, h) for h in row["evidence"]]
        return [b["Status"] for b in bodies if isinstance(b, dict) and "Status" in b and set(b) <= {"Status", "MFADelete"}]
    assert versioning_evidence(r1.run_id) == []  # GetBucketVersioning answered {} then
    assert versioning_evidence(r2.run_id) == ["Enabled"]


def test_read_only_opening_never_creates_a_store(tmp_path):
    import pytest

    from auditbook.errors import UserError
    missing = tmp_path / "no" / "such.db"
    with pytest.raises(UserError, match="--db: no store at"):
        open_engine(f"sqlite:///{missing}", create=False)
    assert not missing.parent.exists()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")  # SQLite takes an empty file for an empty database
    with pytest.raises(UserError, match="holds no auditbook tables"):
        open_engine(f"sqlite:///{empty}", create=False)
    open_engine(f"sqlite:///{tmp_path}/made.db")  # writing commands still create it
    assert open_engine(f"sqlite:///{tmp_path}/made.db", create=False).dialect.name == "sqlite"


def test_a_file_that_is_not_a_database_is_one_line(tmp_path):
    import pytest

    from auditbook.errors import UserError
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes\n" * 200)
    with pytest.raises(UserError) as err:
        open_engine(f"sqlite:///{notes}")
    assert "file is not a database" in str(err.value) and "\n" not in str(err.value)
    assert notes.read_text() == "some notes\n" * 200  # untouched


def test_a_read_only_store_is_refused_for_writing_at_once(tmp_path):
    import pytest

    from auditbook.errors import UserError
    open_engine(f"sqlite:///{tmp_path}/s.db")
    url = f"sqlite:///file:{tmp_path}/s.db?mode=ro&uri=true"
    assert current_revision(open_engine(url, create=False)) == HEAD_REVISION  # reading works
    with pytest.raises(UserError, match="cannot write .* attempt to write a readonly database"):
        open_engine(url, writable=True)
    assert not list(tmp_path.glob("file:*"))  # the URI form is not taken for a folder name


def test_run_ids_beyond_64_bits_are_refused(tmp_path):
    import pytest

    from auditbook.errors import UserError
    from auditbook.history.findings import resolve_run
    engine = open_engine(f"sqlite:///{tmp_path}/r.db")
    for run in ("9" * 25, str(2**63), "-1", "1.0", "١"):
        with pytest.raises(UserError, match="--run: .* is not a run id"):
            resolve_run(engine, run)
    with pytest.raises(UserError, match=f"--run: no run {2**63 - 1} in the store"):
        resolve_run(engine, str(2**63 - 1))


# --- the store URL: secrets hidden in every spelling; no read-only spelling creates a file -----------

SECRET_URLS = [  # (URL, what must still show); every secret in them is spelled S3C…, its tail RET…
    ("postgresql://u:S3CretA@127.0.0.1:9/db", "postgresql://u:***@127.0.0.1:9/db"),
    ("postgresql://u:S3C@RETB@127.0.0.1:9/db", "@127.0.0.1:9/db"),  # an unencoded "@" in the password
    ("postgresql://u:S3C/RETC@127.0.0.1:9/db", "u:***@127.0.0.1:9/db"),
    ("postgresql://u:S3C/RETE@127.0.0.1:port/db", "u:***@127.0.0.1:port/db"),  # unparsable: the text fallback
    ("postgresql://u:S3C%2FRETF@127.0.0.1:9/db", "u:***@"),
    ("postgresql://127.0.0.1:9/db?password=S3CretG", "postgresql://127.0.0.1:9/db?password=***"),
    ("postgresql:///db?host=127.0.0.1&password=S3CretH", "host=127.0.0.1"),
    ("postgresql://u@127.0.0.1:9/db?user=u&password=S3CretI&password=S3CretI2", "user=u"),
    ("postgresql://u@127.0.0.1:9/db?sslpassword=S3CJ&authToken=S3CK&client_secret=S3CL&sslmode=require",
     "sslmode=require"),
    ("postgresql://u@127.0.0.1:port/db?Password=S3CM&x=1", "x=1"),  # unparsable, the secret in the query
    ("postgresql://u:S3C#RETN@127.0.0.1:9/db", "@127.0.0.1:9/db"),
    ("sqlite:///x.db?password=S3CretO", "x.db"),
    ("postgresql:/u:S3CretP@127.0.0.1/db", "postgresql:/u:***@127.0.0.1/db"),  # one slash: unparsable
    ("u:S3CretQ@127.0.0.1/db", "***@127.0.0.1/db"),  # no scheme at all
]


@pytest.mark.parametrize("url, kept", SECRET_URLS)
def test_redacted_hides_every_spelling_of_a_password(url, kept):
    from auditbook.store.db import redacted
    shown = redacted(url)
    assert "S3C" not in shown and "RET" not in shown, shown
    assert kept in shown, shown


def test_a_port_that_is_not_a_number_is_one_line_without_the_password():
    with pytest.raises(UserError) as err:
        open_engine("postgresql://u:S3C/RETE@127.0.0.1:port/db", create=False)
    assert "not a usable database URL" in str(err.value) and "S3C" not in str(err.value)


@pytest.mark.parametrize("spelling", [
    "sqlite:///{d}/plain.db?uri=true",  # uri=true without file: is a plain file name to SQLite
    "sqlite:///file:{d}/asked.db?uri=true&mode=rwc",  # asks SQLite to create it
    "sqlite:///file:{d}/escaped.db?uri=true&mo%2564e=rwc",
    "sqlite:///file://{d}/authority.db?uri=true",
    "sqlite:///file://localhost{d}/localhost.db?uri=true",
    "sqlite:///file:{d}/cut%2523here.db?uri=true&mode=memory",  # SQLite ignores what follows "#"
    "sqlite:///file:{d}/vfs.db?uri=true&vfs=unix-none",
])
def test_no_spelling_of_a_sqlite_url_creates_a_file_when_reading(tmp_path, spelling):
    url = spelling.format(d=tmp_path)
    with pytest.raises(UserError, match="^--db: (no store at|cannot open)"):
        open_engine(url, create=False)
    assert list(tmp_path.iterdir()) == []


def test_the_uri_spellings_open_an_existing_store_and_keep_read_only(tmp_path):
    open_engine(f"sqlite:///{tmp_path}/s.db")
    for url in (f"sqlite:///{tmp_path}/s.db?uri=true", f"sqlite:///file://localhost{tmp_path}/s.db?uri=true&mode=rwc"):
        assert current_revision(open_engine(url, create=False)) == HEAD_REVISION
    with pytest.raises(UserError, match="attempt to write a readonly database"):
        open_engine(f"sqlite:///file:{tmp_path}/s.db?mode=ro&uri=true", create=False, writable=True)
    with pytest.raises(UserError, match="not a usable database URL"):
        open_engine("sqlite://?uri=true")  # no file name at all (the driver raised TypeError)
