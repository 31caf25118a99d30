"""`auditbook lab` (issue 13 §7), without starting it: the store handed to the kernels read-only (and
a read-only store refuses writes), the token drawn at each start and kept out of argv, 127.0.0.1
only, nothing reaching out, bad options refused in one line before anything starts. JupyterLab
itself is started in tests/e2e/test_lab_browser.py."""
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from auditbook.cli.main import registered_app
from auditbook.errors import UserError
from auditbook.store import settings
from auditbook.store.db import open_engine
from auditbook.store.session import reading, writing
from auditbook.store.sqlite_urls import sqlite_file
from auditbook.web.lab import (
    NOTEBOOKS,
    discard_token_config,
    prepare_lab,
    read_only_url,
    with_token_config,
)


@pytest.fixture
def store(tmp_path):
    folder = tmp_path / "a store 100%"  # spaces and a percent sign survive the file: URI
    folder.mkdir()
    url = f"sqlite:///{folder}/s.db"
    open_engine(url).dispose()
    return url


def test_a_read_only_sqlite_store_reads_but_refuses_writes(store):
    ro = read_only_url(store)
    assert ro.endswith("?mode=ro&uri=true") and sqlite_file(ro) == Path(store.split(":///", 1)[1])
    engine = open_engine(ro)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 0
    with pytest.raises(OperationalError, match="readonly database"):
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM runs"))
    with pytest.raises(UserError, match="cannot write"):
        open_engine(ro, writable=True)


@pytest.mark.parametrize("slashes", ["///", "/////", "////"])
def test_a_path_written_with_extra_leading_slashes_is_read_read_only(tmp_path, slashes):
    """`sqlite://///tmp/s.db` names `//tmp/s.db`, the same file as /tmp/s.db: its read-only `file:` URI
    must not read `//tmp` as a URI authority (SQLite refuses any host but localhost)."""
    url = f"sqlite:{slashes}{tmp_path}/s.db"
    with writing(open_engine(url)) as session:
        settings.write(session, "probe", {"slashes": slashes})
    with reading(open_engine(read_only_url(url))) as session:
        assert settings.read(session, "probe") == {"slashes": slashes}
    assert os.path.samefile(sqlite_file(read_only_url(url)), tmp_path / "s.db")


def test_a_read_only_url_never_creates_a_store(tmp_path):
    with pytest.raises(UserError):
        open_engine(read_only_url(f"sqlite:///{tmp_path}/none.db"))
    assert not (tmp_path / "none.db").exists()


def test_postgresql_stores_are_opened_read_only_keeping_their_options():
    ro = read_only_url("postgresql+psycopg://lab:p%40ss@127.0.0.1:5432/audit?options=-c%20search_path%3Dx&sslmode=disable")
    assert ro.startswith("postgresql+psycopg://lab:p%40ss@127.0.0.1:5432/audit?")
    assert "sslmode=disable" in ro and "options=-c%20search_path%3Dx%20-c%20default_transaction_read_only%3Don" in ro


@pytest.mark.parametrize("url, message", [("sqlite://", "in-memory"), ("mysql://u@h/db", "neither")])
def test_stores_that_cannot_be_shared_read_only_are_refused(url, message):
    with pytest.raises(UserError, match=message):
        read_only_url(url)


def test_the_lab_listens_on_localhost_with_a_fresh_token_kept_out_of_argv(store, monkeypatch):
    monkeypatch.setenv("AUDITBOOK_APP_TOKEN", "the-app-secret")
    first, second = prepare_lab(store, 8899), prepare_lab(store, 8899)
    assert first.token != second.token and len(first.token) >= 40
    assert first.url == f"http://127.0.0.1:8899/lab/tree/explore.ipynb?token={first.token}"
    assert first.root == NOTEBOOKS and "JUPYTER_TOKEN" not in first.env
    assert not [k for k, v in first.env.items() if first.token in v]  # kernels inherit the server's environment
    argv = " ".join(first.argv)
    assert first.token not in argv and "--ServerApp.ip=127.0.0.1" in argv and "--ServerApp.port=8899" in argv
    assert "--ServerApp.terminals_enabled=False" in argv and "--LabApp.news_url=None" in argv
    assert first.env["AUDITBOOK_DB"] == read_only_url(store) and "AUDITBOOK_APP_TOKEN" not in first.env
    assert prepare_lab(store, 8899, writable=True).env["AUDITBOOK_DB"] == store


def test_the_lab_and_its_kernels_get_neither_its_token_nor_the_callers_credentials(store, monkeypatch):
    dropped = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "aws-secret",
               "AWS_SESSION_TOKEN": "aws-session", "AWS_PROFILE": "prod-admin", "AWS_DEFAULT_REGION": "eu-west-1",
               "SLACK_SECURITY_WEBHOOK": "https://hooks.example/T0/B0/x", "PD_KEY": "pd-routing",
               "SMTP_PASSWORD": "pw-Kq81", "GITHUB_TOKEN": "ghp_x", "OPENAI_API_KEY": "sk-x",
               "JIRA_APIKEY": "jira-x", "AUDITBOOK_SIGNING_SECRET": "sign-x", "JUPYTER_TOKEN": "preset",
               "JUPYTER_TOKEN_FILE": "/tmp/t", "AUDITBOOK_APP_TOKEN": "app-x"}
    kept = {"PGPASSWORD": "store-pw", "KEYBOARD_LAYOUT": "fr", "MONKEY": "1", "LANG": "C.UTF-8"}
    for name, value in {**dropped, **kept}.items():
        monkeypatch.setenv(name, value)
    launch = prepare_lab(store, 8899, catalog="controls.yaml")
    assert not set(dropped) & set(launch.env)
    assert {k: launch.env[k] for k in kept} == kept and launch.env["PATH"] == os.environ["PATH"]
    assert launch.env["AUDITBOOK_DB"] == read_only_url(store)
    assert launch.env["AUDITBOOK_CATALOG"].endswith("controls.yaml")
    assert not [k for k, v in launch.env.items() if launch.token in v or v in dropped.values()]


def test_the_token_reaches_the_server_in_a_private_config_file_that_deletes_itself(store):
    from traitlets.config.loader import PyFileConfigLoader
    launch = prepare_lab(store, 8899)
    argv, path = with_token_config(launch)
    assert argv[:-1] == launch.argv and argv[-1] == f"--config={path}" and launch.token not in " ".join(argv)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    config = PyFileConfigLoader(path.name, str(path.parent)).load_config()  # as the server reads it
    assert config.IdentityProvider.token == launch.token
    assert not path.exists() and not path.parent.exists()
    _, unused = with_token_config(launch)  # a server that never started: its file is removed
    discard_token_config(unused)
    assert not unused.parent.exists()


def test_bad_lab_options_are_one_line_errors(store, tmp_path):
    with pytest.raises(UserError, match="--port: 0"):
        prepare_lab(store, 0)
    with pytest.raises(UserError, match="--notebooks: .* is not a folder"):
        prepare_lab(store, 8899, notebooks=tmp_path / "nope")
    result = CliRunner().invoke(registered_app(), ["lab", "--db", f"sqlite:///{tmp_path}/missing.db"])
    assert isinstance(result.exception, UserError) and "no store" in str(result.exception)
    assert not (tmp_path / "missing.db").exists()


def test_notebooks_take_the_store_from_the_environment_never_a_url():
    import nbformat
    for path in NOTEBOOKS.glob("*.ipynb"):
        source = "".join(c.source for c in nbformat.read(str(path), as_version=4).cells)
        assert "sqlite:///" not in source.replace("sqlite:///var/auditbook.db", "") and "postgresql://" not in source, path
