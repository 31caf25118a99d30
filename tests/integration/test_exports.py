"""The export formats' registry in a fresh interpreter: listing the built-in formats imports none of
their libraries (the formats themselves are tested in tests/unit/test_exports.py)."""
import subprocess
import sys


def test_the_built_in_formats_are_registered_and_listed_without_their_libraries():
    code = ("import sys\nfrom auditbook.plugins import export_formats\nformats = export_formats()\n"
            "print(sorted(formats), all(f.help for f in formats.values()),\n"
            "      [m for m in ('py_ocsf_models', 'trestle') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['asff', 'ocsf', 'oscal'] True []"
