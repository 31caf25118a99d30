"""docs/controls.md is generated from controls.yaml and must match it."""
from pathlib import Path

from auditbook.catalog.docs import render_controls_md
from auditbook.catalog.model import load_catalog

ROOT = Path(__file__).resolve().parents[2]


def test_controls_md_is_up_to_date():
    expected = render_controls_md(load_catalog())
    actual = (ROOT / "docs" / "controls.md").read_text()
    assert actual == expected, "docs/controls.md is stale: run `.venv/bin/auditbook controls-doc > docs/controls.md`"


def test_controls_md_names_every_criterion_and_check():
    catalog = load_catalog()
    text = render_controls_md(catalog)
    assert all(f"### {c.id} " in text for c in catalog.controls)
    assert all(f"`{c.id}`" in text for c in catalog.checks)


def test_collectors_md_resource_types_are_up_to_date():
    from auditbook.catalog.docs import splice_collectors_md
    text = (ROOT / "docs" / "collectors.md").read_text()
    assert splice_collectors_md(text) == text, \
        "docs/collectors.md is stale: run `.venv/bin/auditbook collectors-doc > /tmp/c.md && mv /tmp/c.md docs/collectors.md`"
