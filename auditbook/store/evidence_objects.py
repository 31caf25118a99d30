"""Evidence objects on S3 with Object Lock (docs/evidence-store.md): API responses, manual documents
and packet files stored content-addressed (`<prefix>/sha256/<ab>/<sha256>`), each version locked in
COMPLIANCE mode until now + the retention (seven years by default), with its SHA-256 as the upload
checksum (S3 refuses a body that does not match it). The store keeps the object's URL, its VersionId and
the retention set; every read names that version and checks the SHA-256 of what it got, so an
overwrite (a newer version) is never read and a changed body is an error naming the object."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

from auditbook.errors import UserError, shown

DEFAULT_RETENTION_DAYS = 2557  # seven years, two of them leap years
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 36500  # S3's own bound for Object Lock retention (100 years)
THREADS = 8  # uploads and reads in flight at once
OPTION = "--evidence"
MODE = "COMPLIANCE"  # set on every object: not even the account root can shorten or remove it
MAX_PREFIX = 512
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_SEGMENT = re.compile(r"^[A-Za-z0-9!_.*'()-]{1,255}$")  # S3's "safe characters" for a key
_RETENTION = re.compile(r"^(\d{1,6})\s*([dy]?)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MISSING = {"404", "NoSuchKey", "NoSuchVersion", "NotFound"}


class EvidenceObjectError(UserError):
    """An evidence object that cannot be stored or read as the store recorded it; names the object."""


@dataclass(frozen=True)
class StoredObject:
    """Where one object was stored: s3://bucket/key, the version written (or found), its size and
    the COMPLIANCE retention it carries."""
    url: str
    version: str
    size: int
    retain_until: dt.datetime


def parse_url(url) -> tuple[str, str]:
    """(bucket, prefix) of s3://BUCKET[/PREFIX]; anything else is a UserError naming --evidence."""
    text = url if isinstance(url, str) else ""
    if not text.startswith("s3://"):
        raise UserError(f"{OPTION}: {shown(url)} is not an s3://BUCKET/PREFIX URL")
    bucket, _, prefix = text[len("s3://"):].partition("/")
    if (not _BUCKET.fullmatch(bucket) or ".." in bucket or ".-" in bucket or "-." in bucket or _IP.fullmatch(bucket)
            or bucket.startswith(("xn--", "sthree-")) or bucket.endswith(("-s3alias", "--ol-s3"))):
        raise UserError(f"{OPTION}: {shown(url)}: {shown(bucket)} is not an S3 bucket name "
                        "(3-63 characters: a-z 0-9 . -, starting and ending with a letter or digit)")
    prefix = prefix[:-1] if prefix.endswith("/") else prefix
    if len(prefix) > MAX_PREFIX:
        raise UserError(f"{OPTION}: {shown(url)}: the prefix is longer than {MAX_PREFIX} characters")
    for part in prefix.split("/") if prefix else []:
        if part in (".", "..") or not _SEGMENT.fullmatch(part):
            raise UserError(f"{OPTION}: {shown(url)}: prefix part {shown(part)} is not allowed "
                            "(letters, digits and ! _ . * ' ( ) -; no empty, '.' or '..' part)")
    return bucket, prefix


def parse_retention(value, option: str = "--evidence-retention") -> int:
    """Days of retention from N, Nd (days) or Ny (years of 365.25 days, rounded up: 7y is 2557)."""
    found = _RETENTION.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        raise UserError(f"{option}: {shown(value)} is not a retention (e.g. 2557, 2557d or 7y)")
    number, unit = int(found[1]), found[2]
    days = math.ceil(number * 365.25) if unit == "y" else number
    return checked_retention(days, option, value)


def checked_retention(days, option: str = "--evidence-retention", given=None) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise UserError(f"{option}: {shown(days if given is None else given)} is not between "
                        f"{MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS} days")
    return days


_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def client_for(bucket: str):
    """The S3 client reads of `bucket` use: the one its EvidenceBucket was opened with in this
    process, else one made like every other client (AWS_ENDPOINT_URL honoured)."""
    # botocore is imported by those who use a bucket, not by every user of the store
    from auditbook.collect.clients import aws_client
    with _clients_lock:
        if bucket not in _clients:
            _clients[bucket] = aws_client("s3")
        return _clients[bucket]


def open_bucket(url: str, retention_days: int = DEFAULT_RETENTION_DAYS, client=None) -> EvidenceBucket:
    """The evidence bucket of --evidence URL, checked before anything is written: a malformed URL, a
    retention out of bounds, an unreadable bucket or one without Object Lock enabled is a one-line
    UserError. A default retention rule on the bucket (GOVERNANCE or COMPLIANCE) does not matter:
    every object is written with its own COMPLIANCE retention."""
    bucket, prefix = parse_url(url)
    days = checked_retention(retention_days)
    from botocore.exceptions import BotoCoreError, ClientError

    from auditbook.collect.clients import aws_client, aws_error
    client = client or aws_client("s3")
    try:
        config = client.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration") or {}
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ObjectLockConfigurationNotFoundError":
            config = {}
        else:
            raise UserError(f"{OPTION}: {shown(url)}: cannot read the bucket's Object Lock configuration: "
                            f"{aws_error(exc)}") from None
    except BotoCoreError as exc:
        raise UserError(f"{OPTION}: {shown(url)}: cannot reach the bucket: {aws_error(exc)}") from None
    if config.get("ObjectLockEnabled") != "Enabled":
        raise UserError(f"{OPTION}: {shown(url)}: bucket {bucket} does not have Object Lock enabled "
                        "(create it with Object Lock: docs/evidence-store.md); nothing was written")
    with _clients_lock:
        _clients[bucket] = client
    return EvidenceBucket(url, bucket, prefix, days, client)


def checksum(sha256_hex: str) -> str:
    """S3's ChecksumSHA256 of a body whose SHA-256 is `sha256_hex` (base64 of the digest)."""
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def split_url(url: str) -> tuple[str, str]:
    bucket, _, key = url[len("s3://"):].partition("/")
    return bucket, key


def _code(exc) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) if hasattr(exc, "response") else ""


class EvidenceBucket:
    """A checked bucket and prefix to store content-addressed, COMPLIANCE-locked objects in."""

    def __init__(self, url: str, bucket: str, prefix: str, retention_days: int, client):
        self.url, self.bucket, self.prefix = url, bucket, prefix
        self.retention_days, self.client = retention_days, client

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def content_key(self, sha256_hex: str) -> str:
        return self.key(f"sha256/{sha256_hex[:2]}/{sha256_hex}")

    def retain_until(self) -> dt.datetime:
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        return now + dt.timedelta(days=self.retention_days)

    def put_content(self, sha256_hex: str, data: bytes) -> StoredObject:
        """Store `data` at its content address (once: an object already there with that SHA-256,
        locked in COMPLIANCE mode, is kept, its retention extended to the policy if shorter)."""
        if not _SHA256.fullmatch(sha256_hex) or hashlib.sha256(data).hexdigest() != sha256_hex:
            raise EvidenceObjectError(f"evidence object {shown(sha256_hex)}: the bytes given do not have that SHA-256")
        return self._put(self.content_key(sha256_hex), data, sha256_hex)

    def put_named(self, name: str, data: bytes) -> StoredObject:
        """Store `data` at `<prefix>/<name>` (e.g. a packet's index), locked like every object."""
        return self._put(self.key(name), data, hashlib.sha256(data).hexdigest())

    def put_many(self, hashes: Iterable[str], load: Callable[[str], bytes]) -> dict[str, StoredObject]:
        """put_content for each hash (its bytes from `load`), THREADS at a time; the first failure
        is raised once every upload in flight has ended (objects already stored are harmless)."""
        wanted = list(hashes)
        if not wanted:
            return {}
        with ThreadPoolExecutor(max_workers=min(THREADS, len(wanted))) as pool:
            stored = list(pool.map(lambda h: self.put_content(h, load(h)), wanted))
        return dict(zip(wanted, stored))

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _put(self, key: str, data: bytes, sha256_hex: str) -> StoredObject:
        from botocore.exceptions import BotoCoreError, ClientError

        from auditbook.collect.clients import aws_error
        until = self.retain_until()
        try:
            found = self._locked_copy(key, sha256_hex, until, len(data))
            if found is not None:
                return found
            reply = self._put_object(key, data, sha256_hex, until, only_if_absent=True)
            if reply is None:  # written meanwhile, or the latest version is another body: write ours again
                reply = (self._locked_copy(key, sha256_hex, until, len(data))
                         or self._put_object(key, data, sha256_hex, until, only_if_absent=False))
        except (BotoCoreError, ClientError) as exc:
            raise EvidenceObjectError(f"evidence object {self._url(key)}: cannot store it: {aws_error(exc)}") from None
        if isinstance(reply, StoredObject):
            return reply
        version = reply.get("VersionId")
        if not version or version == "null":
            raise EvidenceObjectError(f"evidence object {self._url(key)}: the bucket gave no version "
                                      "(is versioning enabled?)")
        return StoredObject(self._url(key), version, len(data), until)

    def _put_object(self, key, data, sha256_hex, until, only_if_absent: bool):
        from botocore.exceptions import ClientError
        extra = {"IfNoneMatch": "*"} if only_if_absent else {}
        try:
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256",
                                          ChecksumSHA256=checksum(sha256_hex), ObjectLockMode=MODE,
                                          ObjectLockRetainUntilDate=until, **extra)
        except ClientError as exc:
            if only_if_absent and _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return None
            raise

    def _locked_copy(self, key, sha256_hex, until, size: int) -> Optional[StoredObject]:
        """The key's latest version when it holds this SHA-256 under COMPLIANCE retention (extended
        to `until` if it ends sooner), else None (no object, a delete marker, another body)."""
        from botocore.exceptions import ClientError
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        version = head.get("VersionId")
        if (head.get("ChecksumSHA256") != checksum(sha256_hex) or head.get("ObjectLockMode") != MODE
                or not version or version == "null"):
            return None
        kept = head.get("ObjectLockRetainUntilDate")
        kept = kept.astimezone(dt.timezone.utc) if kept is not None else None
        if kept is None or kept < until:
            self.client.put_object_retention(Bucket=self.bucket, Key=key, VersionId=version,
                                             Retention={"Mode": MODE, "RetainUntilDate": until})
            kept = until
        return StoredObject(self._url(key), version, size, kept)


def at_content_address(key: str, sha256_hex: str) -> bool:
    """Whether `key` is where EvidenceBucket.content_key puts the object with this SHA-256."""
    name = f"sha256/{sha256_hex[:2]}/{sha256_hex}"
    return key == name or key.endswith("/" + name)


def read_object(sha256_hex: str, url: str, version: Optional[str]) -> bytes:
    """The bytes of `url` at `version`, checked against their SHA-256: a missing object or version,
    an access error or other bytes is an EvidenceObjectError naming the object."""
    from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

    from auditbook.collect.clients import aws_error
    where = f"evidence object {shown(url, 1024)} version {shown(version)}"
    if not isinstance(url, str) or not url.startswith("s3://") or not version:
        raise EvidenceObjectError(f"{where}: the store does not say where it is")
    bucket, key = split_url(url)
    if not at_content_address(key, sha256_hex):
        raise EvidenceObjectError(f"{where}: not at the content address of {sha256_hex}: the store row was changed")
    try:
        data = client_for(bucket).get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
    except FlexibleChecksumError:  # botocore checks the SHA-256 stored with the object as it reads
        raise EvidenceObjectError(f"{where}: its bytes do not match their SHA-256 {sha256_hex}: "
                                  "the object was changed") from None
    except (BotoCoreError, ClientError) as exc:
        raise EvidenceObjectError(f"{where}: cannot read it: {aws_error(exc)}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256_hex:
        raise EvidenceObjectError(f"{where}: its SHA-256 is {actual}, not {sha256_hex}: the object was changed")
    return data


def read_many(refs: Iterable[tuple[str, str, str]]) -> Iterator[tuple[str, bytes]]:
    """(sha256, bytes) for each (sha256, url, version), read THREADS at a time, in the order given."""
    wanted = list(refs)
    if not wanted:
        return
    with ThreadPoolExecutor(max_workers=min(THREADS, len(wanted))) as pool:
        for sha, data in zip((r[0] for r in wanted), pool.map(lambda r: read_object(*r), wanted)):
            yield sha, data
