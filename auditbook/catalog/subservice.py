"""subservice-organisations.yaml (next to controls.yaml): the subservice organisations the system relies
on (AWS, carve-out) and the complementary user-entity controls (CUECs) their reports expect the company
to operate — each in the company's own words, with the criteria it supports and the catalog's checks
and manual items that evidence it (docs/scope.md). Validated against the catalog: a mistake is one
line naming the file, the entry and the field (CatalogError, exit 2)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditbook.catalog.model import Catalog, CatalogError
from auditbook.errors import UserError, field_path, first_duplicate, first_error, shown
from auditbook.yamlfile import parse_yaml, read_text

FILE_NAME = "subservice-organisations.yaml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ComplementaryControl(Strict):
    """A CUEC: what the company does so the subservice organisation's controls achieve their aim."""
    id: str = Field(pattern=r"^CUEC-[0-9]{2,3}$")
    statement: str = Field(min_length=10, max_length=1000)
    criteria: list[str] = Field(min_length=1)
    checks: list[str] = Field(default_factory=list)
    manual_items: list[str] = Field(default_factory=list)  # "CRITERION: item name", as controls.yaml names them


class SubserviceOrganisation(Strict):
    name: str = Field(min_length=2, max_length=200)
    services: list[str] = Field(min_length=1)
    method: Literal["carve-out", "inclusive"]
    report_item: str = Field(min_length=3, max_length=250)  # "CRITERION: item name" of its report's review
    relied_on_for: str = Field(min_length=3, max_length=1000)
    complementary_controls: list[ComplementaryControl] = Field(min_length=1)


class SubserviceFile(Strict):
    version: Literal[1]
    subservice_organisations: list[SubserviceOrganisation] = Field(min_length=1)


def path_for(catalog: Catalog) -> Path:
    """The file next to the catalog (controls.yaml's folder)."""
    return Path(catalog.path).parent / FILE_NAME


def load_subservice(catalog: Catalog, path: Optional[Path] = None) -> list[SubserviceOrganisation]:
    """The subservice organisations declared next to the catalog (none when there is no such file),
    validated and cross-checked against the catalog's criteria, checks and manual items."""
    path = Path(path) if path is not None else path_for(catalog)
    if not path.exists() and not path.is_symlink():  # a dangling link is a broken file, not "none declared"
        return []
    try:
        raw = parse_yaml(read_text(path), path)
    except CatalogError:
        raise
    except UserError as exc:
        raise CatalogError(str(exc)) from None
    try:
        spec = SubserviceFile.model_validate(raw)
    except ValidationError as exc:
        loc, message = first_error(exc)
        raise CatalogError(f"{path}: field {field_path(loc) or '(document)'}: {message}")
    _cross_check(spec, catalog, path)
    return spec.subservice_organisations


def _cross_check(spec: SubserviceFile, catalog: Catalog, path: Path) -> None:
    criteria = {c.id for c in catalog.controls}
    checks = {c.id for c in catalog.checks}
    items = {f"{c.id}: {m.name}" for c in catalog.controls for m in c.manual_evidence}
    dupe = first_duplicate(c.id for org in spec.subservice_organisations for c in org.complementary_controls)
    if dupe:
        raise CatalogError(f"{path}: complementary control {dupe} is declared twice")
    for i, org in enumerate(spec.subservice_organisations):
        where = f"{path}: subservice_organisations.{i}"
        if org.report_item not in items:
            raise CatalogError(f"{where}.report_item: {shown(org.report_item)} is not a manual item of the catalog")
        for cuec in org.complementary_controls:
            here = f"{where} ({org.name}): {cuec.id}"
            for field, values, known in (("criteria", cuec.criteria, criteria), ("checks", cuec.checks, checks),
                                         ("manual_items", cuec.manual_items, items)):
                bad = next((v for v in values if v not in known), None)
                if bad is not None:
                    raise CatalogError(f"{here}: field {field}: {shown(bad)} is not in the catalog")
            if not cuec.checks and not cuec.manual_items:
                raise CatalogError(f"{here}: give the checks or manual_items that evidence it")
