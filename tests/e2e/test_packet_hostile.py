"""`auditbook verify` on hostile packets: whatever a packet holds (symlinks out of it, FIFOs, devices,
huge or deeply nested files, forged names, a hostile manifest signed by the key holder, a hostile
previous packet or public key), verify prints one escaped line per problem and exits 1 (2 for a bad
key file), never a traceback, never hangs, never reads without bound.

The packet here is small and synthetic (a few files, signed as `auditbook packet` signs them), so that
each case can be built quickly; tests/integration/test_packet.py has the same tamper suite on a real packet."""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from auditbook.report.packet.manifest import (
    FORMAT,
    MANIFEST,
    SIGNATURE,
    canonical_bytes,
    file_entries,
)
from auditbook.report.packet.signing import Ed25519Signer, dumps_signature, keygen

EXE = str(Path(sys.executable).with_name("auditbook"))
PAGE = b"<html><body>CC6.6: 3 failures</body></html>"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    keygen(str(root / "signer"))
    return {"key": root / "signer.key", "pub": root / "signer.pub"}


def write_packet(root: Path, keys, *, previous=None, edit=None, raw=None) -> Path:
    """Sign the files under root as a packet (edit: change the manifest dict first; raw: sign these
    bytes instead of the canonical manifest)."""
    manifest = {"format": FORMAT, "tool": "auditbook", "previous_manifest_sha256": previous,
                "files": file_entries(root)}
    if edit:
        edit(manifest)
    data = raw if raw is not None else canonical_bytes(manifest)
    (root / MANIFEST).write_bytes(data)
    (root / SIGNATURE).write_bytes(dumps_signature(Ed25519Signer(keys["key"]).sign(data)))
    return root


def make_files(root: Path) -> Path:
    for rel, body in {"index.html": b"<html>index</html>", "criteria/CC6.6.html": PAGE,
                      "data/runs.json": b"[]", f"evidence/{hashlib.sha256(b'{}').hexdigest()}.json": b"{}"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return root


@pytest.fixture
def packet(tmp_path, keys):
    return write_packet(make_files(tmp_path / "packet"), keys)


def verify(packet, key, *extra):
    return subprocess.run([EXE, "verify", str(packet), "--public-key", str(key), *extra],
                          capture_output=True, text=True, timeout=60)


def assert_invalid(r, *expected):
    """Exit 1, every line of stderr one problem, escaped, no traceback, nothing that reads `valid`."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "\x1b" not in r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert lines and all(line.startswith("invalid: ") for line in lines), r.stderr
    assert "valid" not in [line.strip() for line in (r.stdout + r.stderr).splitlines()]
    for text in expected:
        assert text in r.stderr, r.stderr
    return lines


def test_a_genuine_synthetic_packet_is_valid(packet, keys):
    r = verify(packet, keys["pub"])
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "valid", "")


# -- manifest.json and manifest.sig themselves --------------------------------------------------------

def _outside_copy(packet, name):
    outside = packet.parent / f"outside-{name.replace('/', '-')}"
    shutil.copyfile(packet / name, outside)
    (packet / name).unlink()
    return outside


def _fifo(path):
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _nested(depth):
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("case, expected", [
    # the genuine, signed bytes, reached through a symlink to a file outside the packet
    ("manifest-symlink", "not a regular file: 'manifest.json' (a symlink)"),
    ("signature-symlink", "not a regular file: 'manifest.sig' (a symlink)"),
    ("manifest-fifo", "not a regular file: 'manifest.json' (a FIFO)"),
    ("signature-fifo", "not a regular file: 'manifest.sig' (a FIFO)"),
    ("manifest-folder", "not a regular file: 'manifest.json' (a folder)"),
    ("manifest-huge", "too large: 'manifest.json' (larger than"),
    ("signature-huge", "too large: 'manifest.sig' (larger than"),
    ("signature-nested", "signature: 'manifest.sig' is not JSON"),
    ("signature-types", "signature: 'manifest.sig' is malformed"),
    ("signature-not-object", "signature: 'manifest.sig' is malformed"),
    ("signature-algorithm-forged", r"signature: unknown algorithm 'ed25519\nvalid'"),
])
def test_hostile_manifest_or_signature_file(packet, keys, case, expected):
    if case in ("manifest-symlink", "signature-symlink"):
        name = MANIFEST if case == "manifest-symlink" else SIGNATURE
        (packet / name).symlink_to(_outside_copy(packet, name))
    elif case in ("manifest-fifo", "signature-fifo"):
        _fifo(packet / (MANIFEST if case == "manifest-fifo" else SIGNATURE))
    elif case == "manifest-folder":
        (packet / MANIFEST).unlink()
        (packet / MANIFEST).mkdir()
    elif case in ("manifest-huge", "signature-huge"):
        with open(packet / (MANIFEST if case == "manifest-huge" else SIGNATURE), "ab") as fh:
            fh.truncate(65 * 2**20)  # sparse: costs no disk
    elif case == "signature-nested":
        (packet / SIGNATURE).write_bytes(_nested(30000))
    elif case == "signature-types":
        (packet / SIGNATURE).write_text(json.dumps({"algorithm": ["ed25519"], "signature": 5}))
    elif case == "signature-not-object":
        (packet / SIGNATURE).write_text("[1, 2]")
    elif case == "signature-algorithm-forged":
        sig = json.loads((packet / SIGNATURE).read_text())
        (packet / SIGNATURE).write_text(json.dumps({**sig, "algorithm": "ed25519\nvalid"}))
    lines = assert_invalid(verify(packet, keys["pub"]), expected)
    assert len(lines) == 1  # stops there: nothing else of the packet is looked at


@pytest.mark.parametrize("case", ["nested", "entry-without-sha256", "previous-not-a-string", "not-json",
                                  "files-not-a-list"])
def test_an_unsigned_manifest_is_not_read_beyond_its_failed_signature(packet, keys, case):
    manifest = json.loads((packet / MANIFEST).read_bytes())
    if case == "nested":
        raw = _nested(200000)
    elif case == "entry-without-sha256":
        del manifest["files"][0]["sha256"]
        raw = canonical_bytes(manifest)
    elif case == "previous-not-a-string":
        manifest["previous_manifest_sha256"] = {"a": [1]}
        raw = canonical_bytes(manifest)
    elif case == "not-json":
        raw = b"\xff\xfe not json"
    else:
        manifest["files"] = "everything"
        raw = canonical_bytes(manifest)
    (packet / MANIFEST).write_bytes(raw)
    lines = assert_invalid(verify(packet, keys["pub"]), "signature: does not match the manifest")
    assert len(lines) == 1


# -- a manifest signed by the key holder, but hostile ------------------------------------------------

def _drop_sha(m):
    del m["files"][0]["sha256"]


def _previous_list(m):
    m["previous_manifest_sha256"] = ["not", "a", "string"]


def _duplicate(m):
    page = next(f for f in m["files"] if f["path"] == "criteria/CC6.6.html")
    m["files"].append({**page, "sha256": "0" * 64})  # listed twice: the last entry would win


def _path(p):
    def edit(m):
        m["files"].append({"path": p, "sha256": "0" * 64, "size": 1})
    return edit


def _size(value):
    def edit(m):
        m["files"][0]["size"] = value
    return edit


def _file_and_folder(m):
    m["files"].append({"path": "criteria", "sha256": "0" * 64, "size": 1})


@pytest.mark.parametrize("edit, expected", [
    (_drop_sha, "manifest: files.0.sha256: Field required"),
    (_previous_list, "manifest: previous_manifest_sha256: "),
    (_duplicate, "manifest: 'criteria/CC6.6.html' is listed more than once"),
    (_path("../outside.txt"), "manifest: files.4.path: Value error, an empty, '.' or '..' part in the path"),
    (_path("criteria/../../etc/passwd"), "an empty, '.' or '..' part in the path"),
    (_path("/etc/passwd"), "manifest: files.4.path: Value error, an absolute path"),
    (_path("criteria\\..\\..\\x"), "a backslash in the path"),
    (_path("data//runs.json"), "an empty, '.' or '..' part in the path"),
    (_path("criteria/x\nvalid"), "a control character in the path"),
    (_path(MANIFEST), "the manifest or its signature listed as a file"),
    (_size(True), "manifest: files.0.size: Input should be a valid integer"),
    (_size(-1), "manifest: files.0.size: Input should be greater than or equal to 0"),
    (_file_and_folder, "manifest: 'criteria' is listed as a file and is a folder of other files"),
])
def test_a_hostile_signed_manifest_is_refused_line_by_line(packet, keys, edit, expected):
    write_packet(packet, keys, edit=edit)
    lines = assert_invalid(verify(packet, keys["pub"]), expected)
    assert not any(line.startswith(("invalid: missing", "invalid: extra", "invalid: changed")) for line in lines)


@pytest.mark.parametrize("raw, expected", [
    (b'{"format":"auditbook-packet/1","files":[],"files":[],"previous_manifest_sha256":null}',
     "manifest: 'manifest.json' is not valid JSON: a key is repeated"),
    (b'{"format":"auditbook-packet/1","files":[],"previous_manifest_sha256":null,"x":' + _nested(100000) + b"}",
     "manifest: 'manifest.json' is not valid JSON: maximum recursion depth"),
    (b'{"format":"auditbook-packet/0","files":[],"previous_manifest_sha256":null}',
     "manifest: format: Input should be 'auditbook-packet/1'"),
    (b"[]", "manifest: (top level): Input should be a valid dictionary"),
])
def test_a_signed_manifest_that_is_not_a_packet_manifest(tmp_path, keys, raw, expected):
    packet = write_packet(make_files(tmp_path / "p"), keys, raw=raw)
    assert_invalid(verify(packet, keys["pub"]), expected)


# -- the files of the packet ----------------------------------------------------------------------------

def test_a_listed_file_that_is_a_symlink_out_of_the_packet(packet, keys):
    page = packet / "criteria" / "CC6.6.html"
    page.symlink_to(_outside_copy(packet, "criteria/CC6.6.html"))  # same bytes, outside the packet
    lines = assert_invalid(verify(packet, keys["pub"]), "not a regular file: 'criteria/CC6.6.html' (a symlink)")
    assert len(lines) == 1


def test_a_symlinked_folder_is_not_entered(packet, keys):
    outside = packet.parent / "outside-criteria"
    shutil.copytree(packet / "criteria", outside)
    shutil.rmtree(packet / "criteria")
    (packet / "criteria").symlink_to(outside, target_is_directory=True)
    lines = assert_invalid(verify(packet, keys["pub"]), "not a folder: 'criteria' (a symlink)")
    assert len(lines) == 1  # and not "missing" for each file in it


def test_fifos_devices_and_sockets_are_never_opened(packet, keys):
    os.mkfifo(packet / "data" / "pipe")
    _fifo(packet / "data" / "runs.json")  # listed
    try:
        os.mknod(packet / "data" / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # like /dev/zero: endless
        device = True
    except PermissionError:
        device = False  # not root: FIFOs only
    lines = assert_invalid(verify(packet, keys["pub"]), "extra file: 'data/pipe' (a FIFO)",
                           "not a regular file: 'data/runs.json' (a FIFO)")
    if device:
        assert "invalid: extra file: 'data/zero' (a character device)" in lines


def test_a_huge_file_is_judged_by_its_size_without_reading_it(packet, keys):
    with open(packet / "index.html", "ab") as fh:
        fh.truncate(64 * 2**30)  # 64 GiB, sparse
    assert_invalid(verify(packet, keys["pub"]), "changed file: 'index.html' (size 68719476736, the manifest says 18)")


def test_an_extra_empty_folder_fails(packet, keys):
    (packet / "notes").mkdir()
    (packet / "criteria" / "drafts").mkdir()
    lines = assert_invalid(verify(packet, keys["pub"]))
    assert sorted(lines) == ["invalid: extra folder: 'criteria/drafts'", "invalid: extra folder: 'notes'"]


@pytest.mark.parametrize("name, shown", [
    ("x\nvalid", r"'criteria/x\nvalid'"),
    ("\x1b[2K\rvalid", r"'criteria/\x1b[2K\rvalid'"),
    ("ok\u202egnp.html", r"'criteria/ok\u202egnp.html'"),
    ("[red]valid", "'criteria/[red]valid'"),
    ("valid :cross_mark:", "'criteria/valid :cross_mark:'"),
])
def test_names_are_printed_escaped_so_nothing_forges_the_output(packet, keys, name, shown):
    (packet / "criteria" / name).write_text("added")
    lines = assert_invalid(verify(packet, keys["pub"]))
    assert lines == [f"invalid: extra file: {shown}"]


def test_a_non_utf8_name_is_reported_escaped(packet, keys):
    os.mkdir(os.path.join(os.fsencode(packet), b"bad\xff"))
    assert_invalid(verify(packet, keys["pub"]), r"extra folder: 'bad\udcff'")


# -- the previous packet and the public key are hostile too ----------------------------------------------

@pytest.fixture
def chain(tmp_path, keys):
    first = write_packet(make_files(tmp_path / "q1"), keys)
    digest = hashlib.sha256((first / MANIFEST).read_bytes()).hexdigest()
    second = write_packet(make_files(tmp_path / "q2"), keys, previous=digest)
    return first, second


def test_the_chain_verifies(chain, keys):
    first, second = chain
    r = verify(second, keys["pub"], "--previous", str(first))
    assert (r.returncode, r.stdout.strip()) == (0, "valid"), r.stderr


@pytest.mark.parametrize("case, expected", [
    ("manifest-symlink", "previous packet: not a regular file: 'manifest.json' (a symlink)"),
    ("manifest-fifo", "previous packet: not a regular file: 'manifest.json' (a FIFO)"),
    ("changed", "previous packet: changed file: 'index.html'"),
    ("extra-folder", "previous packet: extra folder: 'x\\nvalid'"),
    ("substituted", "chain: "),
    ("not-a-folder", "chain: "),
])
def test_a_hostile_previous_packet(chain, keys, case, expected):
    first, second = chain
    if case == "manifest-symlink":
        (first / MANIFEST).symlink_to(_outside_copy(first, MANIFEST))
    elif case == "manifest-fifo":
        _fifo(first / MANIFEST)
    elif case == "changed":
        (first / "index.html").write_text("rewritten")
    elif case == "extra-folder":
        (first / "x\nvalid").mkdir()
    elif case == "substituted":
        write_packet(first, keys, edit=lambda m: m.update(tool="other"))
    else:
        shutil.rmtree(first)
        first.write_text("a file")
    assert_invalid(verify(second, keys["pub"], "--previous", str(first)), expected)


@pytest.mark.parametrize("case, expected", [
    ("fifo", "not usable as a key file (a FIFO)"),
    ("device", "not usable as a key file (a character device)"),
    ("huge", "not usable as a key file (larger than 65536 bytes)"),
    ("folder", "not usable as a key file (a folder)"),
    ("garbage", "not a PEM public key"),
])
def test_a_hostile_public_key_file_is_one_line_exit_2(packet, tmp_path, case, expected):
    key = tmp_path / "key.pub"
    if case == "fifo":
        os.mkfifo(key)
    elif case == "device":
        key = Path("/dev/zero")
    elif case == "huge":
        with open(key, "wb") as fh:
            fh.truncate(2**30)
    elif case == "folder":
        key.mkdir()
    else:
        key.write_bytes(b"-----BEGIN PUBLIC KEY-----\n" + os.urandom(300) + b"\n-----END PUBLIC KEY-----\n")
    r = verify(packet, key)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: --public-key: ") and expected in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_many_extra_files_are_counted_not_all_listed(packet, keys):
    from auditbook.report.packet.manifest import MAX_PROBLEMS, verify_packet
    from auditbook.report.packet.signing import load_public_key
    for i in range(MAX_PROBLEMS + 5):
        (packet / "data" / f"extra-{i:05}.json").write_bytes(b"")
    result = verify_packet(packet, public_key=load_public_key(keys["pub"]))
    assert len(result.problems) == MAX_PROBLEMS + 1
    assert result.problems[-1] == "… and 5 more problems not listed"


@pytest.mark.parametrize("uploaded", ["../../etc/passwd", "..", ".", "", "a\nvalid.txt", "x\u202egnp.exe",
                                      "C:\\Users\\me\\policy.pdf", "\x1b[31mred.txt", "ok <v7>.txt"])
def test_a_document_name_becomes_a_path_the_verifier_accepts(uploaded):
    """Manual evidence keeps its uploaded file name in the packet: whatever that name is, the path the
    build writes stays in documents/<sha256>/ and passes the verifier's path rules."""
    from auditbook.report.packet.data import document_filename
    from auditbook.report.packet.manifest import unsafe_path
    name = document_filename(uploaded)
    assert "/" not in name and "\\" not in name and name not in ("", ".", "..")
    assert unsafe_path(f"documents/{'0' * 64}/{name}") is None
    assert all(c.isprintable() for c in name)
