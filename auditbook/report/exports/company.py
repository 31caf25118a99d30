"""The company's control library for the auditor's workpapers (docs/company-controls.md): the mapping
as CSV (one row a control, lists joined with "; ", every cell inert in a spreadsheet) and back into
a library file validated like the catalog's include, and as an OSCAL component definition built and
re-parsed with compliance-trestle's models."""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
import tempfile
import uuid
from pathlib import Path
from typing import Optional

import yaml
from pydantic import ValidationError

from auditbook import __version__
from auditbook.catalog.model import (
    Catalog,
    CatalogError,
    CompanyControl,
    split_item,
    validate_company_controls,
)
from auditbook.errors import UserError, field_path, first_error, name_of, shown
from auditbook.history.populations import neutralised, restored
from auditbook.yamlfile import read_text

COLUMNS = ("id", "statement", "owner", "frequency", "criteria", "checks", "manual_items")
LISTS = ("criteria", "checks", "manual_items")
SEPARATOR = "; "
MAX_ROWS = 2000
MAX_CSV_BYTES = 4 * 2**20
NAMESPACE = uuid.UUID("0d7c5f02-3c5e-4d55-8a42-6c7e2b9f1a31")  # uuid5 namespace of the component definition
COMPONENT_TITLE = "AWS estate under auditbook"


# -- CSV -------------------------------------------------------------------------------------------

def _cell(company: CompanyControl, column: str) -> str:
    value = getattr(company, column)
    if column in LISTS:
        for part in value:
            if ";" in part:  # would not come back as one value
                raise UserError(f"company control {company.id}: field {column}: {shown(part)} contains ';'")
        return SEPARATOR.join(value)
    return value


def mapping_csv(catalog: Catalog) -> str:
    """The company controls and their mapping as CSV text (header row first)."""
    if not catalog.company_controls:
        raise UserError(f"{catalog.path}: no company controls (name a library with include:, "
                        "docs/company-controls.md)")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for company in catalog.company_controls:
        writer.writerow([neutralised(_cell(company, c)) for c in COLUMNS])
    return buffer.getvalue()


def _entry(row: list[str], header: list[str]) -> dict:
    entry: dict = {}
    for column, cell in zip(header, row):
        value = restored(cell).strip()
        if column in LISTS:
            entry[column] = [p.strip() for p in value.split(";") if p.strip()]
        elif value:
            entry[column] = value
    return entry


def read_mapping_csv(path: Path, catalog: Catalog) -> list[CompanyControl]:
    """A mapping CSV (as mapping_csv writes it, or edited in a spreadsheet) as validated company
    controls; a mistake is one line naming the file, the row's control, the field and the value."""
    text = read_text(path, max_bytes=MAX_CSV_BYTES).removeprefix("\ufeff")  # a spreadsheet's BOM
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise UserError(f"{path}: not valid CSV: {exc}") from None
    if not rows:
        raise UserError(f"{path}: empty (the first row names the columns: {', '.join(COLUMNS)})")
    header = [restored(h).strip().lower() for h in rows[0]]
    for column in header:
        if column not in COLUMNS:
            raise UserError(f"{path}: column {name_of(column)}: not a column ({', '.join(COLUMNS)})")
    if len(set(header)) != len(header) or "id" not in header:
        raise UserError(f"{path}: the first row must name each column once, id among them ({', '.join(COLUMNS)})")
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    if len(body) > MAX_ROWS:
        raise UserError(f"{path}: {len(body)} controls, more than the {MAX_ROWS} allowed")
    for number, row in enumerate(body, 1):
        if len(row) != len(header):
            raise UserError(f"{path}: company control #{number}: {len(row)} cells for {len(header)} columns")
    try:
        return validate_company_controls([_entry(r, header) for r in body], catalog, str(path))
    except CatalogError as exc:
        raise UserError(str(exc)) from None


def library_yaml(controls: list[CompanyControl]) -> str:
    """A library file (the format `include:` reads) holding these controls."""
    doc = {"version": 1, "company_controls": [c.model_dump(exclude_defaults=False) for c in controls]}
    return ("# The company's control library (docs/company-controls.md), written by auditbook controls import.\n"
            + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100))


def write_new(path: Path, text: str, force: bool) -> None:
    """Write the whole text to `path`, or nothing: a temporary file in the same folder, then linked
    into place (an existing file is refused, atomically) or, with force, renamed over it; a failure
    leaves no half-written file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder")
    if not force and (path.exists() or path.is_symlink()):
        raise UserError(f"{path}: exists (give --force to replace it)")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # FileExistsError when a file appeared meanwhile
    except FileExistsError:
        raise UserError(f"{path}: exists (give --force to replace it)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot write: {exc.strerror}") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


# -- OSCAL component definition -------------------------------------------------------------------

def _uuid(*parts) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(str(p) for p in parts)))


def _props(company: CompanyControl, criterion: str):
    from trestle.oscal import common as oc
    props = [oc.Property(name="company-control-id", value=company.id),
             oc.Property(name="owner", value=" ".join(company.owner.split())),
             oc.Property(name="frequency", value=company.frequency)]
    props += [oc.Property(name="auditbook-check", value=c) for c in company.checks]
    props += [oc.Property(name="manual-evidence", value=" ".join(split_item(i)[1].split()))
              for i in company.manual_items if split_item(i)[0] == criterion]
    return props


def _component_definition(catalog: Catalog, now: Optional[dt.datetime] = None) -> dict:
    """One component (the AWS estate under auditbook) implementing each company control, its criteria
    as implemented requirements; validated by loading it back with trestle's model. UUIDs are uuid5
    of the catalog's SHA-256 and the ids: the same library gives the same document (but its time)."""
    from trestle.oscal import OSCAL_VERSION
    from trestle.oscal import common as oc
    from trestle.oscal import component as cd
    if not catalog.company_controls:
        raise UserError(f"{catalog.path}: no company controls (name a library with include:)")
    source = f"urn:auditbook:catalog:sha256:{catalog.sha256}"
    implementations = [cd.ControlImplementation(
        uuid=_uuid(catalog.sha256, company.id), source=source,
        description=f"{company.id}: {company.statement}",
        props=[oc.Property(name="company-control-id", value=company.id)],
        implemented_requirements=[cd.ImplementedRequirement(
            uuid=_uuid(catalog.sha256, company.id, criterion), control_id=criterion,
            description=company.statement, props=_props(company, criterion))
            for criterion in company.criteria])
        for company in catalog.company_controls]
    component = cd.DefinedComponent(
        uuid=_uuid(catalog.sha256, "component"), type="service", title=COMPONENT_TITLE,
        description=f"The AWS accounts auditbook scans, with the company's controls mapped to {catalog.framework}",
        control_implementations=implementations)
    doc = cd.ComponentDefinition(
        uuid=_uuid(catalog.sha256, "component-definition"),
        metadata=oc.Metadata(title="Company controls (auditbook)", last_modified=now or dt.datetime.now(dt.timezone.utc),
                             version=__version__, oscal_version=OSCAL_VERSION),
        components=[component])
    data = {"component-definition": doc.model_dump(mode="json", by_alias=True, exclude_none=True)}
    cd.Model.model_validate(data)  # loads back: the document is valid OSCAL as trestle reads it
    return data


def component_definition(catalog: Catalog, now: Optional[dt.datetime] = None) -> dict:
    """The component definition (_component_definition), or one line naming the field OSCAL refused."""
    try:
        return _component_definition(catalog, now)
    except ValidationError as exc:
        loc, message = first_error(exc)
        raise UserError(f"{catalog.library_path or catalog.path}: OSCAL component definition: field "
                        f"{field_path(loc) or '(document)'}: {message}") from None

