"""A security tool installs exactly what was reviewed: every package pinned and hashed, installed with
--require-hashes, and the lock file generated from the reviewed top-level list."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\b")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def entries(text: str) -> list[str]:
    """Requirement entries with their continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            out.append(line)
    return out


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    out = {}
    for entry in entries(path.read_text()):
        match = PIN.match(entry)
        assert match, f"{path.name}: not pinned with ==: {entry[:80]!r}"
        out[normalise(match.group(1))] = match.group(3)
    return out


def test_every_locked_package_is_pinned_with_a_hash():
    found = entries((ROOT / "requirements.txt").read_text())
    assert len(found) > 100
    for entry in found:
        assert not re.match(r"(-e\b|--|git\+|https?://|file:)", entry), f"not a pinned package: {entry[:80]!r}"
        assert PIN.match(entry), f"requirements.txt: not pinned with ==: {entry[:80]!r}"
        assert HASH.search(entry), f"requirements.txt: {entry.split()[0]} has no --hash=sha256:…"


def test_the_checker_catches_a_package_without_a_hash(tmp_path):
    bad = "six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\nrequests==2.34.2\n"
    missing = [e for e in entries(bad) if not HASH.search(e)]
    assert [e.split()[0] for e in missing] == ["requests==2.34.2"]


def test_the_lock_holds_every_reviewed_top_level_pin():
    locked = pins(ROOT / "requirements.txt")
    for name, version in pins(ROOT / "requirements.in").items():
        assert locked.get(name) == version, f"requirements.in pins {name}=={version}, the lock has {locked.get(name)}"


def test_make_installs_with_require_hashes_and_nothing_unpinned():
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line and ".venv-lock" not in line]
    assert installs, "the Makefile installs nothing"
    for line in installs:
        if "-r requirements.txt" in line:
            assert "--require-hashes" in line, line
        else:  # the project itself, from this checkout: no dependencies pulled in
            assert "--no-deps" in line and line.rstrip().endswith("-e ."), line
    assert "--upgrade pip" not in makefile
