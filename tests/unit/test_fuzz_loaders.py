"""Every YAML loader (controls.yaml, an accounts file, exceptions.yaml, alerts.yml) against a
generated corpus of hostile files: each either loads or raises one UserError (CatalogError is one)
of one printable line naming the file; no other exception, ever.

The corpus: a small valid document per loader, with every field in turn replaced by hostile values
(impossible dates, wrong types, deep nesting, huge scalars and numbers, control characters), removed,
or joined by a hostile key; seeded random byte flips of the valid file; and whole files that are
empty, a list or a scalar at the top, binary, not UTF-8, UTF-16, aliases (a billion laughs), too big,
a FIFO, a folder, a device or missing. Deterministic (fixed seeds); a few seconds in all."""
import os
import random
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
import yaml

from auditbook.catalog.model import load_catalog
from auditbook.collect.inputs import load_accounts_file
from auditbook.errors import UserError
from auditbook.evaluate.risk_register import load_register
from auditbook.monitor.rules import load_rules
from auditbook.yamlfile import MAX_BYTES


class Plain(str):
    """A scalar written unquoted, so YAML reads it as it would from a hand-written file
    (`2026-02-30` then looks like a date, not a string)."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    def ignore_aliases(self, data):
        return True


_Dumper.add_representer(Plain, lambda d, v: d.represent_scalar("tag:yaml.org,2002:timestamp"
                                                                if v[:1].isdigit() else "tag:yaml.org,2002:str", str(v)))


def _deep_list(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def _deep_map(depth):
    value = {}
    for _ in range(depth):
        value = {"a": value}
    return value


HOSTILE_VALUES = [
    Plain("2026-02-30"), Plain("2026-13-45"), Plain("0000-01-01"), Plain("2026-02-30 25:61:61"),
    Plain("2026-01-01 10:00:00 +99:00"), None, True, 0, -1, 10**40, 1.5, float("inf"), float("nan"),
    "", " ", "x" * 200_000, "a\nb\x1b[31mred\u202e\x00", "é" * 50, [], {}, ["x"], {"k": "v"},
    _deep_list(150), _deep_map(150), [None] * 2000,
]
HOSTILE_KEYS = ["unknown_field", 7, "spaced key", "line\nbreak\x1b", "k" * 5000]


def _valid_catalog():
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "controls.yaml").read_text())
    check = next(c for c in raw["checks"] if c["id"] == "s3-versioning")
    controls = [c for c in raw["controls"] if c["id"] in check["controls"]]
    return {"version": 1, "framework": raw["framework"], "controls": controls, "checks": [check]}


VALID = {
    "catalog": _valid_catalog(),
    "accounts": {"accounts": [{"id": "123456789012", "role": "Auditor", "external_id": "x", "name": "prod"}]},
    "exceptions": {"exceptions": [{"id": "EX-1", "check": "s3-versioning", "account": "123456789012",
                                   "resource": "legacy-*", "owner": "alice", "approver": "ciso",
                                   "justification": "rebuilt from git on every deploy", "expires": Plain("2027-01-31")}]},
    "rules": {"groups": [{"name": "g", "rules": [
        {"alert": "Denied", "expr": 'count_over_time(events{errorCode=~"AccessDenied.*"}[5m]) by (principal) > 5',
         "for": "0s", "labels": {"severity": "high", "soc2_control": "CC6.1", "team": "sec"},
         "annotations": {"summary": "denied calls"}},
        {"alert": "Rotation", "expr": 'posture("aws.kms.key", "days_since(CreationDate) > `90`")', "for": "1h",
         "labels": {"severity": "low", "soc2_control": "CC6.1"}, "annotations": {"summary": "old key"}},
        {"alert": "Regressed", "expr": "check_regressed()", "labels": {"severity": "medium", "soc2_control": "CC7.1"},
         "annotations": {"summary": "a check regressed"}}]}]},
}
LOADERS = {
    "catalog": load_catalog,
    "accounts": load_accounts_file,
    "exceptions": lambda path: load_register(path, required=True, known_checks={"s3-versioning"}),
    "rules": load_rules,
}


def _paths(node, prefix=()):
    """Every place in a document: (path of keys/indexes)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield prefix + (index,)
            yield from _paths(value, prefix + (index,))


def _copy(node):
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def _at(doc, path):
    for part in path[:-1]:
        doc = doc[part]
    return doc


def _dump(doc) -> bytes:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**9).encode("utf-8")


def structural_corpus(valid):
    """Each place replaced by each hostile value, removed, or given a hostile sibling key."""
    for path in _paths(valid):
        for value in HOSTILE_VALUES:
            doc = _copy(valid)
            _at(doc, path)[path[-1]] = value
            yield f"{path} = {str(value)[:30]!r}", _dump(doc)
        doc = _copy(valid)
        parent = _at(doc, path)
        del parent[path[-1]]
        yield f"{path} removed", _dump(doc)
        if isinstance(parent, dict):
            for key in HOSTILE_KEYS:
                doc = _copy(valid)
                _at(doc, path)[key] = "x"
                yield f"{path[:-1]} + key {str(key)[:20]!r}", _dump(doc)


def byte_flips(valid, count=150, seed=20261128):
    """The valid file with a few random bytes replaced, inserted or deleted."""
    rng = random.Random(seed)
    base = _dump(valid)
    for n in range(count):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            kind = rng.random()
            if kind < 0.5:
                data[at] = rng.randrange(256)
            elif kind < 0.75:
                data.insert(at, rng.choice(b"[]{}:-*&!|>'\"#%@`\t\n\x00\xff"))
            else:
                del data[at]
        yield f"byte flips #{n}", bytes(data)


BILLION_LAUGHS = ("a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n"
                  + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)))
EMPTY_IS_VALID = {"exceptions": {"empty", "blank", "only a comment", "null", "document end"}}  # no exceptions
WHOLE_FILES = {
    "empty": b"", "blank": b"   \n\n", "only a comment": b"# nothing\n", "null": b"null\n", "document end": b"---\n...\n",
    "list at the top": b"- a\n- b\n", "flow list at the top": b"[1, 2, 3]\n", "scalar at the top": b"hello\n",
    "number at the top": b"42\n", "date at the top": b"2026-02-30\n",
    "binary": random.Random(7).randbytes(4096), "NUL bytes": b"version: 1\x00\x00\n",
    "not UTF-8": b"version: 1\nframework: caf\xe9\n", "UTF-16": "version: 1\n".encode("utf-16"),
    "billion laughs": BILLION_LAUGHS.encode(), "small alias": b"a: &x 1\nb: *x\n",
    "deep flow nesting": b"[" * 5000 + b"]" * 5000, "deep block nesting": "".join(
        "  " * i + "k:\n" for i in range(2000)).encode(),
    "huge scalar": b"framework: " + b"x" * 3_000_000 + b"\n", "huge number": b"version: " + b"9" * 5000 + b"\n",
    "python tag": b"version: !!python/object/apply:os.system ['true']\n", "bad binary tag": b"a: !!binary ===\n",
    "explicit impossible timestamp": b"a: !!timestamp 2026-02-30\n", "unhashable key": b"? [a, b]\n: c\n",
    "merge key": b"<<: {version: 1}\n", "set": b"!!set {a, b}\n", "tabs": b"a:\n\t- b\n",
    "unclosed quote": b"a: 'oops\n", "bidi override": "framework: \u202egnp.exe\n".encode(),
}


@pytest.fixture
def scratch(tmp_path):
    """A folder for the corpus files: in memory (/dev/shm) when there is one, the disk is slow to
    write thousands of small files to while other tests run."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="auditbook-fuzz-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def _hung(signum, frame):
    raise TimeoutError("the loader hung (a FIFO read, an expansion...)")


def check_outcome(path: Path, load) -> tuple[str, bool]:
    """(what went wrong, '' when the loader behaved; whether it refused the file)."""
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.setitimer(signal.ITIMER_REAL, 5)
    try:
        load(path)
    except UserError as exc:
        message = str(exc)
        if not message.isprintable():  # a line break, an escape sequence, a NUL...
            return f"not one printable line: {message[:300]!r}", True
        if str(path) not in message:
            return f"does not name the file: {message[:300]!r}", True
        if len(message) > 2000:
            return f"a message of {len(message)} characters", True
        return "", True
    except BaseException as exc:  # noqa: BLE001 - exactly what this test exists to catch
        return f"{type(exc).__name__}: {str(exc)[:300]}", False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return "", False


@pytest.mark.parametrize("kind", list(LOADERS))
def test_generated_corpus(scratch, kind):
    load, path = LOADERS[kind], scratch / "valid.yaml"
    path.write_bytes(_dump(VALID[kind]))
    load(path)  # the document the corpus is made from is valid
    problems, refused, total = [], 0, 0
    for label, data in [*structural_corpus(VALID[kind]), *byte_flips(VALID[kind])]:
        path = scratch / f"input-{total}.yaml"
        path.write_bytes(data)
        problem, was_refused = check_outcome(path, load)
        path.unlink()
        if problem:
            problems.append(f"{label}: {problem}")
        refused += was_refused
        total += 1
    assert not problems, f"{len(problems)} of {total}:\n" + "\n".join(problems[:15])
    assert refused > total * 0.6, (refused, total)  # the corpus is hostile: most of it must be refused


@pytest.mark.parametrize("kind", list(LOADERS))
def test_hostile_whole_files(tmp_path, kind):
    load = LOADERS[kind]
    problems = []
    for label, data in WHOLE_FILES.items():
        path = tmp_path / f"{label.replace(' ', '-')}.yaml"
        path.write_bytes(data)
        problems.append((label, *check_outcome(path, load)))
    too_big = tmp_path / "too-big.yaml"
    with open(too_big, "wb") as fh:
        fh.truncate(MAX_BYTES + 1)  # sparse: costs nothing to make
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # reading it would block for ever
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    for label, path in [("too big", too_big), ("a FIFO", fifo), ("a folder", folder), ("a symlink loop", loop),
                        ("missing", tmp_path / "missing.yaml"), ("a device", Path("/dev/zero"))]:
        problems.append((label, *check_outcome(path, load)))
    wrong = [f"{label}: {problem or 'loaded, but must be refused'}" for label, problem, refused in problems
             if problem or not (refused or label in EMPTY_IS_VALID.get(kind, ()))]
    assert not wrong, "\n".join(wrong)


def _repeat_key(kind: str) -> tuple[bytes, int, str]:
    """The valid file with one mapping repeating a key further down (YAML keeps the last one: a
    repeated `expires` quietly extends an exception): the bytes, the repeated line and the key."""
    lines = _dump(VALID[kind]).decode().splitlines(keepends=True)
    if kind == "exceptions":  # the attack: the entry widened to every account and resource, until 2099
        lines += ["  account: '*'\n", "  resource: '*'\n", "  expires: 2099-12-31\n"]
        return "".join(lines).encode(), len(lines) - 2, "account"
    key, _, value = lines[0].partition(":")  # the first top-level key, again at the end
    lines.append(lines[0] if value.strip() else f"{key}: []\n")
    return "".join(lines).encode(), len(lines), key


@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_repeated_key_is_refused_naming_file_line_and_key(tmp_path, kind):
    data, line, key = _repeat_key(kind)
    path = tmp_path / "repeated.yaml"
    path.write_bytes(data)
    with pytest.raises(UserError) as err:
        LOADERS[kind](path)
    assert str(err.value) == f"{path}: not valid YAML at line {line}: duplicate key '{key}'"


def test_a_merge_key_is_not_a_repeated_key(tmp_path):
    from auditbook.yamlfile import parse_yaml
    assert parse_yaml("a: {<<: {x: 1, y: 2}, x: 3}\n", tmp_path / "f.yaml") == {"a": {"x": 3, "y": 2}}
