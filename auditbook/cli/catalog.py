"""`auditbook validate`, `policy`, `controls-doc`, `collectors-doc`: the catalog and the collectors."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from auditbook.cli.common import CATALOG_OPT, app, out


@app.command()
def validate(catalog: Optional[Path] = CATALOG_OPT):
    """Validate the catalog and print what it holds."""
    from auditbook.catalog.model import load_catalog
    cat = load_catalog(catalog)
    out.print(f"{cat.path}: valid — {len(cat.controls)} criteria, {len(cat.checks)} checks "
              f"(sha256 {cat.sha256[:16]}…)")


@app.command()
def policy(
    catalog: Optional[Path] = CATALOG_OPT,
    org: bool = typer.Option(False, "--org", help="Also the actions to list the organisation and assume roles."),
):
    """Print the least-privilege IAM policy: exactly the actions the collectors declare."""
    from auditbook.catalog.model import load_catalog
    from auditbook.collect.policy import policy_document
    sys.stdout.write(json.dumps(policy_document(load_catalog(catalog), org=org), indent=2) + "\n")


@app.command("controls-doc")
def controls_doc(catalog: Optional[Path] = CATALOG_OPT):
    """Print docs/controls.md (criterion, checks, test procedure, manual evidence) from the catalog."""
    from auditbook.catalog.docs import render_controls_md
    from auditbook.catalog.model import load_catalog
    sys.stdout.write(render_controls_md(load_catalog(catalog)))


@app.command("collectors-doc")
def collectors_doc(path: Path = typer.Argument(Path("docs/collectors.md"))):
    """Print the given collectors doc with its resource-type section regenerated from the registry."""
    from auditbook.catalog.docs import splice_collectors_md
    from auditbook.yamlfile import read_text
    sys.stdout.write(splice_collectors_md(read_text(path), str(path)))  # a regular UTF-8 file of bounded size
