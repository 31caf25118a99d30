"""Fuzz-style tests: the CloudTrail reader and notify.yml's loader fed corpora of malformed input
generated here (seeded, so a failure reproduces): wrong types at every field the rules read, deep
nesting, huge values, control characters, broken encodings, truncated and corrupted gzip, gzip
bombs, wrong top-level shapes; YAML of every wrong shape, impossible dates, tags, aliases, bad bytes.

Every input must end as data: a CloudTrail file's records ingested or evidence gaps (one printable
line each, a good record never among them), notify.yml loaded or refused in one line naming the file.
Never a traceback, never another exception."""
import datetime as dt
import gzip
import json
import os
import random
import zlib

from sqlalchemy.orm import Session

from auditbook.collect.evidence import REDACTED
from auditbook.demo import trail as trailgen
from auditbook.errors import UserError
from auditbook.monitor.cloudtrail import (
    Windows,
    normalise,
    process_records,
    scan_file_local,
)
from auditbook.monitor.cloudtrail_records import MAX_GAPS_PER_FILE
from auditbook.monitor.rules import load_rules
from auditbook.store.db import open_engine

ACCOUNT, REGION = "111122223333", "eu-west-1"
CAP = 2**20  # the inflated-size cap in these tests: bombs need only a few MB
SEED = 20261101


def _hostile_values(rng: random.Random) -> list:
    deep: object = "x"
    for _ in range(rng.choice([10, 70, 500])):
        deep = [deep] if rng.random() < 0.5 else {"k": deep}
    return [None, 0, -1, 2**63, 1e308, -0.0, True, False, "", " ", "x" * 5000, "\x00", "\x1b[31mred\x1b[0m",
            "line\nbreak", "\u202eevil", "\ud83d\ude00", "é" * 3, [], {}, [1, "x", None], {"a": {"b": []}},
            "2026-02-30T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "NaN", deep]


FIELDS = ["eventTime", "eventName", "eventSource", "errorCode", "eventID", "userIdentity", "userIdentity.type",
          "userIdentity.arn", "userIdentity.principalId", "userIdentity.accountId", "recipientAccountId",
          "awsRegion", "sourceIPAddress", "additionalEventData", "additionalEventData.MFAUsed", "responseElements",
          "responseElements.ConsoleLogin", "requestParameters", "eventType", "readOnly"]


def _mutate(record: dict, rng: random.Random) -> dict:
    record = json.loads(json.dumps(record))
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(FIELDS).split(".")
        value = rng.choice(_hostile_values(rng))
        target = record
        for part in path[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        if rng.random() < 0.15:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return record


def _good_records(rng: random.Random, n: int) -> list[dict]:
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=2)
    pool = trailgen.incidents(at, ACCOUNT, REGION) + [trailgen.normal(rng, at, ACCOUNT, REGION) for _ in range(10)]
    out = []
    for _ in range(n):
        record = json.loads(json.dumps(rng.choice(pool)))
        record["eventID"] = f"{rng.getrandbits(128):032x}"
        out.append(record)
    return out


def _record_files(rng: random.Random, count: int):
    """(body, indices of records that were tampered with or None when the whole file is hostile)."""
    for _ in range(count):
        records = _good_records(rng, rng.randint(1, 12))
        bad = set()
        for i in range(len(records)):
            if rng.random() < 0.5:
                records[i] = _mutate(records[i], rng)
                bad.add(i)
        for _ in range(rng.randint(0, 2)):  # entries that are not records at all
            records.insert(len(records), rng.choice([1, "x", None, [], True, 2.5, [{"eventName": "x"}]]))
            bad.add(len(records) - 1)
        yield gzip.compress(json.dumps({"Records": records}).encode()), bad


def _bomb(inflated: int, payload: bytes = b"\0") -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = payload * (2**20 // len(payload))
    return b"".join([z.compress(block) for _ in range(inflated // len(block))] + [z.flush()])


def _file_corpus(rng: random.Random):
    """Whole files that are hostile: (body, None)."""
    good = gzip.compress(json.dumps({"Records": _good_records(rng, 20)}).encode())
    yield b"", None
    yield os.urandom(2000), None
    yield _bomb(8 * CAP), None  # zeros: 8 MB from a few KB
    yield _bomb(3 * CAP, b" "), None  # valid JSON whitespace around nothing
    yield _bomb(CAP // 2, b"[") + _bomb(CAP // 2 + 10, b"]"), None  # two members, over the cap together
    yield gzip.compress(b"[" * 100_000 + b"]" * 100_000), None  # nesting depth
    yield gzip.compress(b'{"Records": [' + b"{}," * 400_000 + b"{}]}"), None  # valid, under the cap, GBs parsed
    yield gzip.compress(b'{"Records": ' + b"[" * 2000 + b"]" * 2000 + b"}"), None
    for text in ('{"Records": "\\ud800"}', '{"Records": ["\\ud800"]}', "\ufeff{\"Records\": []}", "{}", "[]", "null",
                 '"Records"', "1e999", '{"Records": null}', '{"Records": 5}', '{"Records": {"0": {}}}'):
        yield gzip.compress(text.encode()), None
    for encoding in ("utf-16", "utf-32", "latin-1"):
        yield gzip.compress('{"Records": [{"eventName": "é"}]}'.encode(encoding)), None
    for _ in range(40):  # bit flips and truncations of a valid file
        body = bytearray(good)
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 8)):
                body[rng.randrange(10, len(body))] ^= 1 << rng.randrange(8)
            yield bytes(body), None
        else:
            yield bytes(body[: rng.randrange(1, len(body) - 1)]), None
    yield good + b"\0" * 16, None  # trailing zeros after the member
    yield gzip.compress(b"", mtime=0) * 50_000 + good, None  # members past the bound (quadratic to inflate once)


def _check_gaps(gaps, n_records, bad, source):
    for gap in gaps:
        assert gap.source == source
        assert gap.reason and gap.reason.isprintable() and len(gap.reason) < 400, gap
        assert gap.index is None or 0 <= gap.index < n_records
        if bad is not None:  # a record that was not tampered with is never a gap
            assert gap.index is None or gap.index in bad, (gap, bad)


def test_cloudtrail_reader_turns_every_malformed_input_into_data(tmp_path):
    rng = random.Random(SEED)
    rules = load_rules()
    engine = open_engine(f"sqlite:///{tmp_path}/fuzz.db")
    windows = Windows()
    event_rules = [r for r in rules if r.kind == "events"]
    corpus = list(_record_files(rng, 150)) + list(_file_corpus(rng))
    whole_file_gaps = stored = 0
    for number, (body, bad) in enumerate(corpus):
        source = f"file-{number}"
        n, found, _changes, _span, gaps, error = scan_file_local(body, rules, CAP, source)
        if error is not None:
            whole_file_gaps += 1
            assert bad is None and n == 0 and found == [] and error.isprintable() and len(error) < 400, error
            continue
        with Session(engine) as session, session.begin():
            matches, _fired, more = process_records(session, found, rules, windows, source)
        _check_gaps(gaps + more, n, bad, source)
        stored += matches
        if bad is not None:  # every untouched record was stored once for each rule it matches
            assert matches >= sum(rule.test(normalise(r)) for i, r in found if i not in bad for rule in event_rules)
    assert whole_file_gaps >= 50 and stored > 100  # the corpus exercised both sides


def test_a_file_cut_into_gzip_members_anywhere_is_read_up_to_the_bound_and_a_gap_past_it():
    from auditbook.monitor.cloudtrail_records import MAX_MEMBERS
    rng = random.Random(SEED + 3)
    raw = json.dumps({"Records": _good_records(rng, 30)}).encode()
    for members in [1, 2, 7, MAX_MEMBERS - 1, MAX_MEMBERS, MAX_MEMBERS + 1, 40] + [rng.randint(1, 60) for _ in range(20)]:
        cuts = sorted(rng.sample(range(1, len(raw)), members - 1))
        body = b"".join(gzip.compress(raw[a:b], compresslevel=rng.randint(0, 9))
                        for a, b in zip([0] + cuts, cuts + [len(raw)]))
        n, _found, _changes, _span, gaps, error = scan_file_local(body, load_rules(), CAP, "f")
        if members <= MAX_MEMBERS:
            assert (n, error) == (30, None), members
        else:
            assert n == 0 and error == f"more than {MAX_MEMBERS} gzip members (CloudTrail writes one)", members


def test_many_bad_records_in_one_file_are_listed_up_to_a_bound_and_counted():
    records = [1] * 5000 + _good_records(random.Random(1), 1)
    n, found, _changes, _span, gaps, error = scan_file_local(gzip.compress(json.dumps({"Records": records}).encode()), load_rules(),
                                            CAP, "f")
    assert error is None and n == 5001 and len(found) <= 1
    assert len(gaps) == MAX_GAPS_PER_FILE + 1 and [g.index for g in gaps[:-1]] == list(range(MAX_GAPS_PER_FILE))
    assert gaps[-1].index is None and gaps[-1].reason.startswith(f"{5000 - MAX_GAPS_PER_FILE} more records not read")


def test_huge_and_deep_values_in_a_matching_record_are_stored_redacted_or_a_gap(tmp_path):
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    root = trailgen.record(at, ACCOUNT, REGION, "iam.amazonaws.com", "CreateLoginProfile", user_type="Root",
                           request={"password": "pw-" + "s" * 300_000, "blob": "b" * 500_000})
    deep = dict(root, eventID="deep", requestParameters=_nest(64))
    deeper = dict(root, eventID="deeper", requestParameters=_nest(65))
    body = gzip.compress(json.dumps({"Records": [root, deep, deeper]}).encode())
    n, found, _changes, _span, gaps, error = scan_file_local(body, load_rules(), CAP * 4, "f")
    assert (n, [i for i, _ in found], [g.index for g in gaps]) == (3, [0, 1], [2])
    engine = open_engine(f"sqlite:///{tmp_path}/deep.db")
    with Session(engine) as session, session.begin():
        matches, _, more = process_records(session, found, load_rules(), Windows(), "f")
    assert matches == 2 and more == []
    from auditbook.monitor.alerts import list_alerts
    from auditbook.monitor.cloudtrail import evidence_records
    kept = evidence_records(engine, list_alerts(engine)[0])
    assert kept[0]["requestParameters"]["password"] == REDACTED and len(kept[0]["requestParameters"]["blob"]) == 500_000


def _nest(depth: int):
    """requestParameters making a record `depth` levels deep (the record is level 1)."""
    value: object = 1
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_lookup_events_pages_of_malformed_events_are_data(tmp_path):
    import boto3
    from botocore.stub import ANY, Stubber

    from auditbook.monitor.cloudtrail_lookup import ingest_lookup
    rng = random.Random(SEED + 1)
    engine = open_engine(f"sqlite:///{tmp_path}/lookup.db")
    client = boto3.client("cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    now = dt.datetime.now(dt.timezone.utc)
    texts = ["", "{", "[]", "null", "1", '"x"', "[" * 3000, '{"eventName": 1}', "\ud800".encode("utf-8", "surrogatepass")
             .decode("utf-8", "replace")]
    records = _good_records(rng, 40)
    events = [{"EventId": str(i), "CloudTrailEvent": json.dumps(_mutate(r, rng)) if i % 2 else json.dumps(r)}
              for i, r in enumerate(records)] + [{"EventId": "t", "CloudTrailEvent": t} for t in texts]
    with Stubber(client) as stub:
        stub.add_response("lookup_events", {"Events": events}, {"StartTime": ANY, "EndTime": ANY})
        result = ingest_lookup(engine, client, load_rules(), now=now)
    assert result.records == len(events) and result.matches > 0
    _check_gaps(result.gaps, len(events), {i for i in range(len(events)) if i % 2 or i >= len(records)},
                f"lookup_events {REGION}")


# --- notify.yml ---------------------------------------------------------------------------------------------

NOTIFY_FIELDS = ["name", "kind", "url", "url_env", "routing_key_env", "project", "user_env", "token_env",
                 "min_severity", "secrets_file", "extra"]
YAML_SCALARS = ["2026-02-30", "2026-13-01", "2026-02-30T25:61:00Z", "0000-00-00", "2026-02-28", "~", "null", "yes",
                "0o777", "0x1F", "1e400", ".nan", "-.inf", "0123", "'quoted'", '"\\x00"', '"\\u202e"', "[]", "{}",
                "[1, [2, [3]]]", "{a: {b: c}}", "!!binary aGVsbG8=", "!!python/object:os.system ls", "!!set {a}",
                "&anchor x", "*anchor", "|\n  block", "> \n  folded", "'" + "x" * 3000 + "'", "é€😀", "soc", "slack",
                "pagerduty", "jira", "http://127.0.0.1/x", "ftp://x", "high", "PD_KEY", "!!timestamp 2026-02-30"]


SECRETS_FILES = ["secrets.yml", "missing.yml", "fifo", "secrets-bad.yml", "/", ".", '"se\\x1b[2Jcrets.yml"',
                 '"\\u202eyml"', "''"]
VALID = {"slack": ["kind: slack", "url_env: SLACK_URL"],
         "pagerduty": ["kind: pagerduty", "url: http://127.0.0.1/pd", "routing_key_env: PD_KEY"],
         "jira": ["kind: jira", "url: http://127.0.0.1/", "project: SEC", "user_env: U", "token_env: T"]}


def _notify_texts(rng: random.Random):
    """notify.yml texts: valid channels with fields replaced or added at random, and raw damage."""
    for number in range(250):
        lines = []
        if rng.random() < 0.3:
            lines.append(f"secrets_file: {rng.choice(SECRETS_FILES)}")
        lines.append(rng.choice(["channels:"] * 8 + ["channels: " + rng.choice(YAML_SCALARS), "chanels:", "- channels:"]))
        for i in range(rng.randint(0, 3)):
            entry = [f"name: ch{number}-{i}"] + VALID[rng.choice(list(VALID))]
            for _ in range(rng.choice([0, 0, 1, 2])):
                entry[rng.randrange(len(entry))] = f"{rng.choice(NOTIFY_FIELDS)}: {rng.choice(YAML_SCALARS)}"
            lines.append("  - " + entry[0])
            lines += ["    " + e for e in entry[1:]]
        text = "\n".join(lines) + "\n"
        if rng.random() < 0.2:  # raw damage: a character of trouble somewhere
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice(["\t", ":", "[", "{", "'", '"', "\x00", "\x85", "\ufeff", "&a ", "*a ",
                                           "%YAML 2.0\n", "---\n", "\r"]) + text[at:]
        yield text.encode("utf-8", "surrogatepass")
    yield b"\xff\xfe\x00c\x00h"  # UTF-16 bytes
    yield b"channels: [" * 5000
    yield b"a: &a [x]\nb: &b [*a, *a]\nchannels: *b\n"
    yield b"channels:\n  - {name: soc, kind: slack, url_env: X}\n  - {name: soc, kind: slack, url_env: Y}\n"


def test_notify_yml_corpus_loads_or_is_refused_in_one_line(tmp_path):
    from auditbook.monitor.notify import Channel, load_channels
    rng = random.Random(SEED + 2)
    (tmp_path / "secrets.yml").write_text("PD_KEY: 2026-02-30\nX: '0123'\n")
    (tmp_path / "secrets-bad.yml").write_text("PD_KEY: [s3cr3t]\n")
    os.mkfifo(tmp_path / "fifo")  # opening it for reading must not hang
    path = tmp_path / "notify.yml"
    loaded = refused = 0
    for text in _notify_texts(rng):
        path.write_bytes(text)
        try:
            channels = load_channels(path)
        except UserError as exc:
            message = str(exc)
            assert message.isprintable() and str(path) in message and "s3cr3t" not in message, (text, message)
            refused += 1
        else:
            assert all(isinstance(ch, Channel) for ch in channels)
            assert len({ch.name for ch in channels}) == len(channels)
            loaded += 1
    assert loaded >= 20 and refused >= 100
