"""The CLI end to end against a moto server subprocess on 127.0.0.1, with a second account reached
by assume-role (accounts file and --org)."""
import json
import os
import subprocess
import sys

import boto3
import pytest

from auditbook.demo.run import MotoServer, demo_environment

BIN = [sys.executable, "-m", "auditbook.cli.main"]


@pytest.fixture(scope="module")
def server():
    with MotoServer(0) as srv:
        env = demo_environment(srv.url)
        mgmt = boto3.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                             region_name="us-east-1")
        kw = {"endpoint_url": srv.url}
        org = mgmt.client("organizations", **kw)
        org.create_organization(FeatureSet="ALL")
        member = org.create_account(Email="member@example.test", AccountName="member")["CreateAccountStatus"]["AccountId"]
        creds = mgmt.client("sts", **kw).assume_role(RoleArn=f"arn:aws:iam::{member}:role/Auditor",
                                                      RoleSessionName="setup")["Credentials"]
        ms = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                           aws_session_token=creds["SessionToken"], region_name="us-east-1")
        ms.client("s3", **kw).create_bucket(Bucket="member-only-bucket")
        mgmt.client("iam", **kw).create_user(UserName="mgmt-user")
        yield srv, env, member


def _run(args, env, cwd):
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **env}
    return subprocess.run(BIN + args, capture_output=True, text=True, env=full, cwd=cwd, timeout=120)


def test_scan_accounts_file_and_findings_json(server, tmp_path):
    srv, env, member = server
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(f"accounts:\n  - id: '123456789012'\n    name: management\n"
                        f"  - id: '{member}'\n    role: Auditor\n    external_id: abc\n    name: member\n")
    db = f"sqlite:///{tmp_path}/e2e.db"
    proc = _run(["scan", "--accounts", str(accounts), "--regions", "us-east-1,eu-west-1", "--db", db], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "run id: 1" in proc.stdout and "PASS" in proc.stdout
    proc = _run(["findings", "--format", "json", "--db", db], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    required = {"check", "controls", "status", "severity", "account", "region", "resource", "message", "evidence"}
    assert rows and all(required <= set(r) for r in rows)
    assert {r["account"] for r in rows} == {"123456789012", member}
    bucket = [r for r in rows if r["resource"] == "arn:aws:s3:::member-only-bucket" and r["check"] == "s3-versioning"]
    assert bucket and bucket[0]["account"] == member and bucket[0]["status"] == "FAIL"
    assert all(len(h) == 64 for r in rows for h in r["evidence"])
    assert {r["status"] for r in rows} <= {"PASS", "FAIL", "ERROR"}
    proc = _run(["findings", "--format", "csv", "--status", "fail", "--db", db], env, tmp_path)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0].startswith("check,controls,status")
    assert all(",FAIL," in line for line in proc.stdout.splitlines()[1:])


def test_scan_org_discovery(server, tmp_path):
    srv, env, member = server
    db = f"sqlite:///{tmp_path}/org.db"
    proc = _run(["scan", "--org", "OrganizationAccountAccessRole", "--db", db], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(_run(["findings", "--format", "json", "--db", db], env, tmp_path).stdout)
    assert member in {r["account"] for r in rows}


@pytest.mark.parametrize("content,expected", [
    ("accounts:\n  - id: '12345'\n    role: Auditor\n", "accounts[0] (id 12345) field id: String should match pattern"),
    ("accounts:\n  - id: '123456789012'\n    rolle: X\n", "accounts[0] (id 123456789012) field rolle"),
    ("accounts: [\n", "not valid YAML at line 2"),
    ("accounts: []\n", "accounts:"),
])
def test_bad_accounts_file(server, tmp_path, content, expected):
    srv, env, _ = server
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    db = tmp_path / "bad.db"
    proc = _run(["scan", "--accounts", str(path), "--db", f"sqlite:///{db}"], env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert expected in proc.stderr and str(path) in proc.stderr


def test_findings_without_runs(tmp_path):
    from auditbook.store.db import open_engine
    open_engine(f"sqlite:///{tmp_path}/empty.db")  # a store, with no run in it
    proc = _run(["findings", "--db", f"sqlite:///{tmp_path}/empty.db"], {}, tmp_path)
    assert proc.returncode == 2 and "no runs in the store" in proc.stderr


def test_bad_region_and_run(tmp_path, server):
    srv, env, _ = server
    proc = _run(["scan", "--regions", "us east", "--db", f"sqlite:///{tmp_path}/r.db"], env, tmp_path)
    assert proc.returncode == 2 and "--regions" in proc.stderr
    assert not (tmp_path / "r.db").exists()  # refused before the store was created
    from auditbook.store.db import open_engine
    open_engine(f"sqlite:///{tmp_path}/r.db")
    proc = _run(["findings", "--run", "abc", "--db", f"sqlite:///{tmp_path}/r.db"], env, tmp_path)
    assert proc.returncode == 2 and "--run" in proc.stderr
