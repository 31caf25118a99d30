"""A small store with a known history, built with real scans under in-process moto, for the history
and packet tests. July 2026, one account, us-east-1, the checks of CC6.6 only (run_scan criterion=):

  day 1  bucket `open-data` has no public access block (FAIL); bucket `old-export` neither;
         security group named with an HTML payload is open to the world on port 22 (FAIL)
  day 2  same
  day 3  `open-data` gets a public access block (fixed after 2 days)
  day 4  `old-export` is deleted (its failure ends: resource removed)
  day 5  no scan (a monitoring gap)
  day 6  bucket `audit-trail`, blocked until now, loses its public access block (PASS -> FAIL: a
         CheckRegressed alert fires)
and CC1.1's code of conduct on file as manual evidence, effective 2 July.
"""
from __future__ import annotations

import datetime as dt
import os

import yaml

EVIL = "<img src=x onerror=alert(1)>"
PERIOD = ("2026-07-01", "2026-07-06")
SUBSET = ("CC1.1", "CC6.6", "A1.2")  # criteria of the small test catalog
BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}


def day(n: int) -> dt.datetime:
    return dt.datetime(2026, 7, n, 6, 0, tzinfo=dt.timezone.utc)


def build_store(db: str) -> dict:
    from moto import mock_aws

    from tests.conftest import FAKE_ENV
    old = {k: os.environ.get(k) for k in FAKE_ENV}
    os.environ.update(FAKE_ENV)
    try:
        with mock_aws():
            import boto3

            from auditbook.scan import run_scan
            s = boto3.Session(region_name="us-east-1")
            s3, ec2 = s.client("s3"), s.client("ec2")
            for name in ("open-data", "old-export"):
                s3.create_bucket(Bucket=name)
                s3.delete_public_access_block(Bucket=name)
            s3.create_bucket(Bucket="audit-trail")
            s3.put_public_access_block(Bucket="audit-trail", PublicAccessBlockConfiguration=BLOCK_ALL)
            vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
            sg = ec2.create_security_group(GroupName=EVIL, Description="x", VpcId=vpc,
                                           TagSpecifications=[{"ResourceType": "security-group",
                                                               "Tags": [{"Key": "Name", "Value": EVIL}]}])["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
            runs = {}
            for n in (1, 2, 3, 4, 6):
                if n == 3:
                    s3.put_public_access_block(Bucket="open-data", PublicAccessBlockConfiguration=BLOCK_ALL)
                if n == 4:
                    s3.delete_bucket(Bucket="old-export")
                if n == 6:
                    s3.delete_public_access_block(Bucket="audit-trail")
                runs[n] = run_scan(regions="us-east-1", db=db, criterion="CC6.6", at=day(n)).run_id
            _manual_evidence(db)
            return runs
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


CONDUCT = b"Code of conduct, version 7. Every employee acknowledges it on hire and every year.\n"


def _manual_evidence(db: str) -> None:
    """CC1.1's code of conduct, effective on 2 July (inside the period)."""
    import tempfile
    from pathlib import Path

    from auditbook.auth import Actor
    from auditbook.catalog.model import load_catalog
    from auditbook.history.evidence_events import annotate_evidence
    from auditbook.scan import add_evidence, decide_evidence
    from auditbook.store.db import open_engine
    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "code-of-conduct <v7>.txt"
        doc.write_bytes(CONDUCT)
        row = add_evidence(open_engine(db), load_catalog(), "CC1.1", doc, effective=dt.date(2026, 7, 2),
                           owner="People operations", item="Code of conduct", uploaded_by="tests")
        row = annotate_evidence(open_engine(db), load_catalog(), Actor("tests", "analyst"), row.id, row.version,
                                explanation="code of conduct v7 filed after the quarter")  # late: explained
        decide_evidence(open_engine(db), Actor("reviewer@tests.example", "approver"), row.id, row.version,
                        "approve", "code of conduct v7 read")  # a second person approves it (two-person rule)


def small_catalog(path) -> str:
    """The bundled catalog cut to a few criteria (a packet of it builds in seconds)."""
    from auditbook.catalog.model import DEFAULT_PATH
    raw = yaml.safe_load(DEFAULT_PATH.read_text())
    raw.pop("include", None)  # the company library maps criteria this cut-down catalog drops
    raw.pop("parameters_file", None)  # the thresholds' defaults (the company's file is not beside it)
    raw["controls"] = [c for c in raw["controls"] if c["id"] in SUBSET]
    checks = []
    for check in raw["checks"]:
        keep = [c for c in check["controls"] if c in SUBSET]
        if keep:
            checks.append({**check, "controls": keep})
    raw["checks"] = checks
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)
