"""The packet modules keep jsonschema from building rfc3987-syntax's IRI grammar (~1.4 s of CPU in every
build process and notebook worker, python-jsonschema/jsonschema#1428): nothing in a packet checks IRIs, and
nbformat still validates notebooks. Each case runs in a fresh interpreter (imports are process-wide)."""
import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_packet_modules_leave_the_iri_grammar_out_and_notebooks_are_still_validated():
    out = _run("""
        import sys, time
        import auditbook.report.packet.render, auditbook.report.packet.execute
        import jsonschema, nbformat
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
        nbformat.validate(nb)
        broken = nbformat.v4.new_notebook()
        broken["cells"] = [{"cell_type": "nonsense"}]
        try:
            nbformat.validate(broken)
            print("broken notebook accepted")
        except nbformat.ValidationError:
            pass
        print(sys.modules["rfc3987_syntax"] is None, "lark" in sys.modules)
    """)
    assert out == "True False"


def test_a_process_that_imported_the_grammar_first_keeps_it():
    out = _run("""
        import sys
        try:
            import rfc3987_syntax
        except ImportError:
            print("not installed"); raise SystemExit
        import auditbook.report.packet.render
        print(sys.modules["rfc3987_syntax"] is rfc3987_syntax)
    """)
    assert out in ("True", "not installed")
