import datetime as dt

from auditbook.evidence import REDACTED, canonical, clean_response, digest


def test_redaction_at_any_depth_and_metadata_dropped():
    resp = {"ResponseMetadata": {"RequestId": "x"},
            "Credentials": {"AccessKeyId": "AKIA", "SecretAccessKey": "s"},
            "DBInstances": [{"MasterUserPassword": "hunter2", "Name": "db",
                             "Nested": {"secretstring": "x", "Variables": {"TOKEN": "t"}}}]}
    out = clean_response(resp)
    assert "ResponseMetadata" not in out
    assert out["Credentials"] == REDACTED
    db = out["DBInstances"][0]
    assert db["MasterUserPassword"] == REDACTED and db["Nested"]["secretstring"] == REDACTED
    assert db["Nested"]["Variables"] == REDACTED and db["Name"] == "db"
    assert "hunter2" not in canonical(out).decode()


def test_canonical_hash_is_stable():
    a = clean_response({"B": 1, "A": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)})
    b = clean_response({"A": dt.datetime(2026, 1, 1), "B": 1})
    assert canonical(a) == canonical(b) == b'{"A":"2026-01-01T00:00:00Z","B":1}'
    assert digest(canonical(a)) == digest(canonical(b))
