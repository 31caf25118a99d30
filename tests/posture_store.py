"""A small store with a known history for the posture filters, the changes between runs and the wall
(stored through save_run, the store's own path, without AWS). Two accounts, one region, three daily
runs ending `last` (the latest ten minutes ago by default):

  resource        account      tags                  run 1   run 2   run 3
  sg-a1           production   Environment=prod      PASS    FAIL    FAIL      regression in run 2
  sg-a2           production   Environment=prod      FAIL    PASS    (gone)    fixed in run 2, gone in run 3
  sg-b1           staging      env=staging           PASS    PASS    FAIL      regression in run 3
  sg-b2           staging      —                     —       FAIL    FAIL      new failure in run 2
  bucket-a        production   owner=team-data       FAIL    FAIL    PASS      fixed in run 3 (versioning)

Security groups are checked by ec2-sg-no-public-ingress (high; CC6.6, CC6.1), the bucket by
s3-versioning (medium; A1.2, PI1.5)."""
from __future__ import annotations

import datetime as dt
from typing import Optional

A, B = "111111111111", "222222222222"
REGION = "us-east-1"
SG, BUCKET = "aws.ec2.security_group", "aws.s3.bucket"
SG_CHECK, BUCKET_CHECK = "ec2-sg-no-public-ingress", "s3-versioning"
IDENTITIES = [{"account": A, "name": "production", "role": None, "identity": {"Account": A}, "error": None},
              {"account": B, "name": "staging", "role": None, "identity": {"Account": B}, "error": None}]
RESOURCES = {  # name: (account, type, tags as the API spells them)
    "sg-a1": (A, SG, {"Tags": [{"Key": "Environment", "Value": "prod"}]}),
    "sg-a2": (A, SG, {"Tags": [{"Key": "Environment", "Value": "prod"}]}),
    "sg-b1": (B, SG, {"Tags": [{"Key": "env", "Value": "staging"}]}),
    "sg-b2": (B, SG, {}),
    "bucket-a": (A, BUCKET, {"tag_set": [{"Key": "owner", "Value": "team-data"}]}),
}
HISTORY = {  # per run: resource -> status (absent: not there)
    1: {"sg-a1": "PASS", "sg-a2": "FAIL", "sg-b1": "PASS", "bucket-a": "FAIL"},
    2: {"sg-a1": "FAIL", "sg-a2": "PASS", "sg-b1": "PASS", "sg-b2": "FAIL", "bucket-a": "FAIL"},
    3: {"sg-a1": "FAIL", "sg-b1": "FAIL", "sg-b2": "FAIL", "bucket-a": "PASS"},
}


def arn(name: str) -> str:
    account, rtype, _ = RESOURCES[name]
    if rtype == BUCKET:
        return f"arn:aws:s3:::{name}"
    return f"arn:aws:ec2:{REGION}:{account}:security-group/{name}"


def _run_inputs(statuses: dict, catalog):
    from auditbook.collect.records import Collection, Record, Scope
    from auditbook.evaluate.evaluator import Finding
    checks = {c.id: c for c in catalog.checks}
    collection = Collection(scopes=[Scope(acct, REGION, rtype) for acct in (A, B) for rtype in (SG, BUCKET)])
    findings = []
    for name, status in statuses.items():
        account, rtype, tags = RESOURCES[name]
        data = {"GroupId": name, "GroupName": name, **tags} if rtype == SG else {"Name": name, **tags}
        collection.records.append(Record(rtype, account, REGION, name, arn(name), data, [], {}, REGION, name))
        check = checks[SG_CHECK if rtype == SG else BUCKET_CHECK]
        findings.append(Finding(check.id, list(check.controls), status, check.severity, account, REGION, REGION,
                                rtype, name, arn(name), "met" if status == "PASS" else "not met", [], name))
    return collection, findings


def build(db: str, last: Optional[dt.datetime] = None, simulated: Optional[str] = None) -> dict:
    """The store at `db`; {run number: run id}. `simulated`: the label of the latest run (the demo's)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.evaluate.evaluator import summarise
    from auditbook.monitor.alerts import sync_regressions
    from auditbook.store.db import open_engine
    from auditbook.store.runs import save_run
    from auditbook.store.session import writing
    catalog, engine = load_catalog(), open_engine(db)
    last = last or dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(minutes=10)
    ids = {}
    for n, statuses in HISTORY.items():
        at = last - dt.timedelta(days=len(HISTORY) - n)
        collection, findings = _run_inputs(statuses, catalog)
        params = {"regions": [REGION], "simulated": simulated if n == len(HISTORY) else None}
        with writing(engine) as session:
            ids[n] = save_run(session, catalog_sha256=catalog.sha256, tool_version="test", parameters=params,
                              identities=IDENTITIES, collection=collection, findings=findings, started_at=at,
                              finished_at=at + dt.timedelta(seconds=30), summary=summarise(catalog, findings, set()))
        sync_regressions(engine, ids[n], at)
    return ids
