"""The built-in export formats, registered through the export_formats seam (auditbook.hookspecs)
like a plugin's. An ExportFormat is a name, a one-line help and render(view) → a JSON-able
document; the heavy libraries (py-ocsf-models, compliance-trestle) are imported by render only, so
listing the formats costs nothing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from auditbook.hookspecs import hookimpl

if TYPE_CHECKING:
    from auditbook.report.exports.view import RunView


@dataclass(frozen=True)
class ExportFormat:
    name: str
    help: str
    render: Callable[["RunView"], Any]


def _ocsf(view: "RunView") -> list[dict]:
    from auditbook.report.exports.ocsf import to_ocsf
    return to_ocsf(view)


def _asff(view: "RunView") -> list[dict]:
    from auditbook.report.exports.asff import to_asff
    return to_asff(view)


def _oscal(view: "RunView") -> dict:
    from auditbook.report.exports.oscal import to_oscal
    return to_oscal(view)


BUILTIN = [
    ExportFormat("ocsf", "OCSF 1.5 Detection Finding (class 2004), one per finding", _ocsf),
    ExportFormat("asff", "AWS Security Finding Format (Security Hub), one per finding", _asff),
    ExportFormat("oscal", "OSCAL assessment-results: an observation per finding, a finding per criterion", _oscal),
]


@hookimpl
def export_formats() -> list[ExportFormat]:
    return BUILTIN
