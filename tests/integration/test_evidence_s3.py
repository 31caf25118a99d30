"""Evidence on S3 with Object Lock end to end over HTTP (moto_server on 127.0.0.1; docs/evidence-store.md):
an existing store's responses and documents moved into a locked bucket, a packet built from that store
(its evidence read back from the bucket at the recorded versions) kept in the bucket with `packet
--evidence` and verified with `auditbook verify`; a locked version cannot be deleted, an overwrite is
reported by `evidence verify-store` and never read."""
from __future__ import annotations

import json

import pytest

from tests.conftest import cli

BUCKET = "org-evidence"


@pytest.fixture(scope="module")
def server():
    from auditbook.demo.run import MotoServer
    with MotoServer() as running:
        yield running


@pytest.fixture(scope="module")
def s3(server):
    import boto3

    from tests.conftest import FAKE_ENV
    client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id=FAKE_ENV["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=FAKE_ENV["AWS_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    client.create_bucket(Bucket="plain")
    return client


def _env(server) -> dict:
    from tests.conftest import FAKE_ENV
    return {**FAKE_ENV, "AWS_ENDPOINT_URL": server.url}


@pytest.fixture(scope="module")
def moved(server, s3, history_store):
    """The packet tests' store with its responses moved into the locked bucket."""
    r = cli("evidence", "move-to-bucket", "--evidence", f"s3://{BUCKET}/store", "--db", history_store["db"],
            env=_env(server))
    assert r.returncode == 0 and " API responses, " in r.stdout, r.stderr
    return history_store


def test_a_bucket_without_object_lock_is_refused_over_http(server, s3, history_store, packet_keys, tmp_path):
    out = tmp_path / "refused"
    r = cli("packet", "--from", "2026-07-01", "--to", "2026-07-31", "--out", str(out), "--signer",
            f"ed25519:{packet_keys['key']}", "--db", history_store["db"], "--catalog", history_store["catalog"],
            "--evidence", "s3://plain/packets", env=_env(server))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Object Lock" in r.stderr, r.stderr
    assert not out.exists() and "Contents" not in s3.list_objects_v2(Bucket="plain")


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_packet_from_a_bucket_store_verifies_and_is_kept_in_the_bucket(server, s3, signed_packet, moved,
                                                                         packet_keys):
    """signed_packet was built before the move (bodies in the store): the evidence read back from the
    bucket is the same, byte for byte."""
    from tests.packet_store import PERIOD
    history_store = moved
    db, env = history_store["db"], _env(server)
    checked = cli("evidence", "verify-store", "--problems-only", "--db", db, env=env)
    assert checked.returncode == 0 and ", 0 with problems" in checked.stdout, checked.stderr
    out = history_store["root"] / "from-bucket"
    built = cli("packet", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(out), "--signer",
                f"ed25519:{packet_keys['key']}", "--db", db, "--catalog", history_store["catalog"],
                "--evidence", f"s3://{BUCKET}/packets", env=env)
    assert built.returncode == 0, built.stderr
    assert _files(out / "evidence") == _files(signed_packet / "evidence") != {}
    verified = cli("verify", str(out), "--public-key", str(packet_keys["pub"]))
    assert verified.returncode == 0 and verified.stdout.strip() == "valid", verified.stderr
    index_key = next(line for line in built.stdout.splitlines() if "index s3://" in line).split(f"s3://{BUCKET}/")[1]
    index = json.loads(s3.get_object(Bucket=BUCKET, Key=index_key.split(" ")[0])["Body"].read())
    page = next(f for f in index["files"] if f["path"] == "manifest.json")
    kept = s3.get_object(Bucket=BUCKET, Key=page["object"].split("/", 3)[3], VersionId=page["version"])
    assert kept["Body"].read() == (out / "manifest.json").read_bytes() and kept["ObjectLockMode"] == "COMPLIANCE"


def test_a_locked_version_cannot_be_deleted_and_an_overwrite_is_reported(server, s3, moved):
    from botocore.exceptions import ClientError
    db, env = moved["db"], _env(server)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="store/sha256/")["Versions"]
    target = versions[0]
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=BUCKET, Key=target["Key"], VersionId=target["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    forged = s3.put_object(Bucket=BUCKET, Key=target["Key"], Body=b"{}")["VersionId"]
    report = cli("evidence", "verify-store", "--problems-only", "--db", db, env=env)
    assert report.returncode == 1 and ", 1 with problems" in report.stdout
    assert forged in report.stderr and "overwrite" in report.stderr and target["Key"] in report.stderr
