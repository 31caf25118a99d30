"""WORM, reported (`auditbook evidence verify-store`): for every object the store keeps in an evidence
bucket — API responses and documents — whether it is present at the version the store recorded, its
bytes have the recorded SHA-256, it is locked in COMPLIANCE mode until at least the retention the store
recorded; and every other version or delete marker on its key (someone overwrote or deleted it: the
store's version is still the one read). A delete of a locked version that S3 refused leaves no trace
in the bucket: CloudTrail data events record it (docs/evidence-store.md). Also: moving what an existing
store holds itself into the bucket (`evidence move-to-bucket`, and a document after `evidence add`)."""
from __future__ import annotations

import datetime as dt
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Optional

from auditbook.collect.clients import aws_error
from auditbook.store import evidence, manual_evidence
from auditbook.store.db import utc
from auditbook.store.evidence_objects import (
    MODE,
    THREADS,
    at_content_address,
    client_for,
    split_url,
)
from auditbook.store.session import reading


@dataclass(frozen=True)
class ObjectCheck:
    """One object's state: kind ("evidence" or "document"), where, what lock it carries, and each
    problem found (none: present, unchanged, locked as recorded, no other version on its key)."""
    kind: str
    sha256: str
    url: str
    version: Optional[str]
    mode: Optional[str]
    retain_until: Optional[dt.datetime]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_problems(client, bucket: str, key: str, ref: tuple) -> tuple[Optional[str], Optional[dt.datetime], list]:
    from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError
    sha, _url, version, policy = ref
    if not version:
        return None, None, ["the store records no version of it"]
    try:
        reply = client.get_object(Bucket=bucket, Key=key, VersionId=version)
        data = reply["Body"].read()
    except FlexibleChecksumError:  # the bytes read do not match the SHA-256 stored with them
        data = None
        try:
            reply = client.head_object(Bucket=bucket, Key=key, VersionId=version)
        except (BotoCoreError, ClientError) as exc:
            return None, None, [f"hash mismatch (its bytes are not what its checksum says); its lock cannot be "
                                f"read: {aws_error(exc)}"]
    except (BotoCoreError, ClientError) as exc:
        return None, None, [f"not readable at its version: {aws_error(exc)}"]
    mode, until = reply.get("ObjectLockMode"), reply.get("ObjectLockRetainUntilDate")
    problems = []
    actual = hashlib.sha256(data).hexdigest() if data is not None else "not what its checksum says"
    if actual != sha:
        problems.append(f"hash mismatch: its SHA-256 is {actual}, not {sha}")
    if mode != MODE:
        problems.append(f"retention mode {mode or 'none'}, not {MODE}")
    wanted = utc(policy) if policy is not None else None
    if wanted is None:
        problems.append("the store records no retention for it")
    if until is None or (wanted is not None and until < wanted):
        problems.append(f"retained until {until.isoformat() if until else 'never'}, before "
                        f"{wanted.isoformat() if wanted else 'any date'} (the policy recorded)")
    return mode, until, problems


def _version_problems(client, bucket: str, key: str, version: Optional[str]) -> list[str]:
    """Every other version and delete marker on the key, as problems."""
    from botocore.exceptions import BotoCoreError, ClientError
    problems = []
    try:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
            for other in page.get("Versions", []):
                if other.get("Key") == key and other.get("VersionId") != version:
                    problems.append(f"another version {other.get('VersionId')} written {other.get('LastModified')} "
                                    "(an overwrite: readers ignore it)")
            for marker in page.get("DeleteMarkers", []):
                if marker.get("Key") == key:
                    problems.append(f"delete marker {marker.get('VersionId')} at {marker.get('LastModified')} "
                                    "(a delete: the recorded version is still read)")
    except (BotoCoreError, ClientError) as exc:
        problems.append(f"its versions cannot be listed: {aws_error(exc)}")
    return problems


def _place_problems(bucket: str, key: str, sha: str, expected) -> list[str]:
    """A row pointing anywhere but the content address of its SHA-256 in the evidence bucket (`expected`,
    when known): a changed store row (the bytes may match and still be held nowhere locked)."""
    problems = [] if at_content_address(key, sha) else [f"not at the content address of {sha}"]
    if expected is not None and (bucket != expected.bucket or not key.startswith(expected.key(""))):
        problems.append(f"not in the evidence bucket s3://{expected.bucket}/{expected.prefix}")
    return problems


def check_object(kind: str, ref: tuple, expected=None) -> ObjectCheck:
    """The state of one (sha256, url, version, retain_until) the store recorded; `expected`: the
    evidence bucket it must be in (an EvidenceBucket), when known."""
    sha, url, version, _policy = ref
    bucket, key = split_url(url)
    client = client_for(bucket)
    problems = _place_problems(bucket, key, sha, expected)
    mode, until, read = _read_problems(client, bucket, key, ref)
    problems += read + _version_problems(client, bucket, key, version)
    return ObjectCheck(kind, sha, url, version, mode, until, tuple(problems))


def verify_store(engine, expected=None) -> Iterator[ObjectCheck]:
    """check_object for every response and document the store keeps in a bucket, THREADS at a
    time, evidence first, each kind by SHA-256; `expected`: the evidence bucket they must be in."""
    with reading(engine) as session:
        refs = ([("evidence", r) for r in evidence.object_refs(session)]
                + [("document", r) for r in manual_evidence.object_refs(session)])
    if not refs:
        return
    with ThreadPoolExecutor(max_workers=min(THREADS, len(refs))) as pool:
        yield from pool.map(lambda item: check_object(*item, expected), refs)


def move_store_to_bucket(engine, bucket) -> tuple[int, int]:
    """Every response and document an existing store holds itself, uploaded to `bucket` (a batch per
    transaction: an interrupted move leaves every row readable, and runs again from where it stopped);
    -> (responses, documents) moved."""
    from auditbook.store.session import writing
    responses = 0
    while True:
        with writing(engine) as session:
            moved = evidence.move_to_bucket(session, bucket)
        if not moved:
            break
        responses += moved
    with reading(engine) as session:
        held = manual_evidence.held_documents(session)
    for sha in held:
        with writing(engine) as session:
            manual_evidence.move_to_bucket(session, sha, bucket)
    return responses, len(held)
