"""The change behind a finding on PostgreSQL (which enforces column sizes and time zones SQLite does not):
write events kept once by event id (INSERT … ON CONFLICT DO NOTHING), what each file covers, and the
timeline built from them — the same answer as on SQLite (tests/unit/test_resource_timeline.py)."""
import datetime as dt

from auditbook.history.resource_timeline import timeline
from auditbook.monitor.watch import cycle
from auditbook.store.db import open_engine
from tests.resource_timeline_store import ROLE_ARN, SOURCE_IP, build_store


def test_the_timeline_of_a_regression_on_postgres(postgres, aws):
    db = postgres.database()
    info = build_store(db)
    engine = open_engine(db)
    found = timeline(engine, info["arn"])
    assert [c["kind"] for c in found["changes"]] == ["first_seen", "modified", "modified"]
    [event] = found["changes"][1]["events"]
    assert (event["principal"], event["source_ip"], event["ticket"]) == (ROLE_ARN, SOURCE_IP, "CHG-1042")
    assert event["at"].tzinfo is not None and event["at"].utcoffset() == dt.timedelta(0)
    assert found["changes"][1]["coverage"]["covered"] and not found["changes"][2]["coverage"]["covered"]
    # the same log files read again (another bucket, say): each write event is still kept once
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="org-trail")["Contents"]]
    s3.create_bucket(Bucket="org-trail-copy")
    for key in keys:
        s3.copy_object(Bucket="org-trail-copy", Key=key, CopySource={"Bucket": "org-trail", "Key": key})
    result = cycle(engine, lambda _b: s3, ["org-trail-copy"]).ingest["org-trail-copy"]
    assert result.files == len(keys) and result.changes == 1 and result.gaps == []
    assert [len(c["events"]) for c in timeline(engine, info["arn"])["changes"]] == [0, 1, 0]
