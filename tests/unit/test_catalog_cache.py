"""load_catalog validates the same files once per process (issue 16 §6: `auditbook scan` read the
catalog twice, ~0.1 s each), and never serves a stale or shared catalog: a change to the catalog, its
library or its parameters file, or to the registered resource types or check functions, is read again; every caller
gets a copy of its own."""
import json

import pytest

from auditbook.catalog import model
from auditbook.catalog.model import DEFAULT_PATH, CatalogError, load_catalog
from tests.catalog_edits import write_catalog


@pytest.fixture
def parses(monkeypatch):
    """How many times a catalog's YAML was parsed."""
    count = [0]
    real = model.parse_yaml

    def counting(text, path):
        count[0] += 1
        return real(text, path)
    monkeypatch.setattr(model, "parse_yaml", counting)
    return count


def test_second_load_of_the_same_files_is_not_parsed_again(tmp_path, parses):
    path = write_catalog(tmp_path, text=DEFAULT_PATH.read_text())
    first = load_catalog(path)
    after_first = parses[0]
    second = load_catalog(path)
    assert parses[0] == after_first  # served from the validated copy
    assert second.sha256 == first.sha256 and [c.id for c in second.checks] == [c.id for c in first.checks]
    assert second.path == first.path and second.library_path == first.library_path
    assert [c._parameters for c in second.checks] == [c._parameters for c in first.checks]


def test_every_caller_gets_its_own_copy(tmp_path):
    path = write_catalog(tmp_path, text=DEFAULT_PATH.read_text())
    first = load_catalog(path)
    first.checks[0].severity = "informational"
    first.checks.pop()
    second = load_catalog(path)
    assert len(second.checks) == len(first.checks) + 1
    assert second.checks[0] is not first.checks[0]


def test_an_edited_catalog_is_read_again(tmp_path):
    path = write_catalog(tmp_path, text=DEFAULT_PATH.read_text())
    assert load_catalog(path).parameters["kms_rotation_max_days"].default == 365
    path.write_text(path.read_text().replace("kms_rotation_max_days: {type: integer, default: 365",
                                             "kms_rotation_max_days: {type: integer, default: 366", 1))
    assert load_catalog(path).parameters["kms_rotation_max_days"].default == 366


def test_an_edited_parameters_file_is_read_again(tmp_path):
    path = write_catalog(tmp_path, text=DEFAULT_PATH.read_text())
    parameters = tmp_path / "company-parameters.yaml"
    for days in (100, 200):
        parameters.write_text(json.dumps({"version": 1, "parameters": {"kms_rotation_max_days": days}}))
        assert load_catalog(path).parameters["kms_rotation_max_days"].value == days
    parameters.unlink()  # the parameters file removed: its absence is what the catalog now says
    with pytest.raises(CatalogError, match="company-parameters.yaml"):
        load_catalog(path)


def test_an_edited_library_is_read_again(tmp_path):
    path = write_catalog(tmp_path, text=DEFAULT_PATH.read_text())
    catalog = load_catalog(path)
    if catalog.include is None:
        pytest.fail("the bundled catalog includes the company's control library")
    (tmp_path / catalog.include).write_text("version: 1\ncompany_controls: []\n")
    with pytest.raises(CatalogError, match="company_controls"):
        load_catalog(path)


def test_a_resource_type_unregistered_since_is_an_error_again(tmp_path, monkeypatch):
    """The catalog is validated against the registered resource types (plugins add some): a type gone
    since the first load makes the next load fail, as it would have without the first."""
    path = write_catalog(tmp_path, text=DEFAULT_PATH.read_text())
    used = load_catalog(path).checks[0].resource
    real = model.resource_types
    monkeypatch.setattr(model, "resource_types", lambda: {k: v for k, v in real().items() if k != used})
    with pytest.raises(CatalogError, match="unknown resource type"):
        load_catalog(path)


def test_a_file_edited_while_it_is_validated_is_not_cached_stale(tmp_path, monkeypatch):
    """The attack pass: the parameters file edited after validation read it but before the cache key was
    taken — the cache must not pair the new text with the catalog built from the old one."""
    path = write_catalog(tmp_path, text=DEFAULT_PATH.read_text())
    parameters = tmp_path / "company-parameters.yaml"
    parameters.write_text(json.dumps({"version": 1, "parameters": {"kms_rotation_max_days": 100}}))
    real = model._validated_catalog

    def edited_meanwhile(*args):
        catalog = real(*args)
        parameters.write_text(json.dumps({"version": 1, "parameters": {"kms_rotation_max_days": 200}}))
        return catalog
    monkeypatch.setattr(model, "_validated_catalog", edited_meanwhile)
    assert load_catalog(path).parameters["kms_rotation_max_days"].value == 100  # what was validated
    monkeypatch.setattr(model, "_validated_catalog", real)
    assert load_catalog(path).parameters["kms_rotation_max_days"].value == 200  # the file now
