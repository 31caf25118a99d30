"""The catalog: complete, and every kind of mistake reported as one line naming id and field."""
from pathlib import Path

import pytest

from auditbook.catalog.model import DEFAULT_PATH, CatalogError, load_catalog
from tests.catalog_edits import check_of, write_catalog

ALL_CRITERIA = (
    [f"CC1.{i}" for i in range(1, 6)] + [f"CC2.{i}" for i in range(1, 4)] + [f"CC3.{i}" for i in range(1, 5)]
    + ["CC4.1", "CC4.2"] + [f"CC5.{i}" for i in range(1, 4)] + [f"CC6.{i}" for i in range(1, 9)]
    + [f"CC7.{i}" for i in range(1, 6)] + ["CC8.1", "CC9.1", "CC9.2"] + [f"A1.{i}" for i in range(1, 4)]
    + ["C1.1", "C1.2"] + [f"PI1.{i}" for i in range(1, 6)]
    + ["P1.1", "P2.1", "P3.1", "P3.2", "P4.1", "P4.2", "P4.3", "P5.1", "P5.2"]
    + [f"P6.{i}" for i in range(1, 8)] + ["P7.1", "P8.1"]
)


def test_catalog_has_all_61_criteria_with_procedures_and_evidence():
    cat = load_catalog()
    assert len(ALL_CRITERIA) == 61
    assert [c.id for c in cat.controls] == ALL_CRITERIA
    for c in cat.controls:
        assert c.test_procedure and c.owner and c.title
        assert c.manual_evidence, f"{c.id} names no manual evidence"
    assert len(cat.sha256) == 64


def test_issue_checks_are_mapped():
    cat = load_catalog()
    mapped = {cid for check in cat.checks for cid in check.controls}
    assert {"CC6.1", "CC6.6", "CC6.7", "CC7.2", "A1.2", "C1.1"} <= mapped
    assert len(cat.checks) >= 30


CASES = {
    "duplicate control": (lambda r: r["controls"].append(dict(r["controls"][0])), "control CC1.1: field id: duplicate"),
    "duplicate check": (lambda r: r["checks"].append(dict(r["checks"][0])), "check ec2-sg-no-public-ingress: field id: duplicate"),
    "unknown resource type": (lambda r: check_of(r, "s3-versioning").update(resource="aws.s3.buckets"),
                              "check s3-versioning: field resource: unknown resource type 'aws.s3.buckets'"),
    "invalid jmespath": (lambda r: check_of(r, "s3-versioning").update(expect="versioning_status ==="),
                         "check s3-versioning: field expect: invalid JMESPath"),
    "unknown function": (lambda r: check_of(r, "s3-versioning").update(applies="is_prod(Name)"),
                         "check s3-versioning: field applies: unknown function is_prod()"),
    "missing field": (lambda r: check_of(r, "s3-versioning").pop("remediation"),
                      "check s3-versioning: field remediation: Field required"),
    "mistyped severity": (lambda r: check_of(r, "s3-versioning").update(severity="urgent"),
                          "check s3-versioning: field severity:"),
    "mistyped actions": (lambda r: check_of(r, "s3-versioning").update(actions="s3:GetBucketVersioning"),
                         "check s3-versioning: field actions:"),
    "unknown criterion": (lambda r: check_of(r, "s3-versioning").update(controls=["CC6.9"]),
                          "check s3-versioning: field controls: unknown criterion 'CC6.9'"),
    "undeclared action": (lambda r: check_of(r, "s3-versioning").update(actions=["s3:GetObject"]),
                          "check s3-versioning: field actions: 's3:GetObject' is not made by"),
    "values of unknown type": (lambda r: check_of(r, "s3-versioning").update(applies="contains(values('aws.nope', 'X'), Name)"),
                               "field applies: values() names unknown resource type 'aws.nope'"),
    "control missing procedure": (lambda r: r["controls"][3].pop("test_procedure"),
                                  "control CC1.4: field test_procedure: Field required"),
    "bad cadence": (lambda r: r["controls"][0]["manual_evidence"][0].update(cadence="sometimes"),
                    "control CC1.1: field manual_evidence.0.cadence:"),
    "expect and function": (lambda r: check_of(r, "s3-versioning").update(function="x"),
                            "check s3-versioning: field expect: give exactly one of expect or function"),
    "extra field": (lambda r: check_of(r, "s3-versioning").update(expct="x"), "check s3-versioning: field expct: Extra inputs"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_mistake_is_one_line(tmp_path, case):
    mutate, expected = CASES[case]
    path = write_catalog(tmp_path, mutate)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    message = str(err.value)
    assert expected in message and "\n" not in message and str(path) in message






def test_not_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("controls: [\n")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(path)


def test_registered_function_check(tmp_path):
    from auditbook.catalog.functions import CHECK_FUNCTIONS, check_function
    check_function("bucket_name_has_env")(lambda record: record.get("Name", "").startswith(("prod-", "staging-")))
    try:
        def mutate(r):
            c = check_of(r, "s3-versioning")
            c.pop("expect")
            c["function"] = "bucket_name_has_env"
        cat = load_catalog(write_catalog(tmp_path, mutate))
        from auditbook.collect.records import Collection
        from auditbook.evaluate.evaluator import Evaluator, _Compiled
        ev = Evaluator(cat, Collection())
        check = next(c for c in cat.checks if c.id == "s3-versioning")
        assert ev._test(_Compiled(check), {"Name": "prod-x"})[0] == "PASS"
        assert ev._test(_Compiled(check), {"Name": "tmp"})[0] == "FAIL"
    finally:
        CHECK_FUNCTIONS.pop("bucket_name_has_env", None)
    assert Path(DEFAULT_PATH).exists()


def _function_check(tmp_path, name):
    def mutate(r):
        c = check_of(r, "s3-versioning")
        c.pop("expect")
        c["function"] = name
    return write_catalog(tmp_path, mutate)


@pytest.mark.parametrize("fn", [lambda record, context: True, lambda: True, lambda *, record: True])
def test_check_function_of_the_wrong_arity_is_refused_at_load(tmp_path, fn):
    from auditbook.catalog.functions import CHECK_FUNCTIONS
    CHECK_FUNCTIONS["wrong_arity"] = fn  # put there directly, as a plugin could
    try:
        with pytest.raises(CatalogError) as err:
            load_catalog(_function_check(tmp_path, "wrong_arity"))
    finally:
        CHECK_FUNCTIONS.pop("wrong_arity", None)
    assert "check s3-versioning: field function: 'wrong_arity' must take exactly one argument" in str(err.value)


def test_check_function_with_optional_arguments_is_accepted(tmp_path):
    from auditbook.catalog.functions import CHECK_FUNCTIONS, check_function
    check_function("optional_extra")(lambda record, strict=False: True)
    try:
        assert load_catalog(_function_check(tmp_path, "optional_extra")).checks
    finally:
        CHECK_FUNCTIONS.pop("optional_extra", None)


def test_registering_a_check_function_of_the_wrong_arity_fails_at_once():
    from auditbook.catalog.functions import CHECK_FUNCTIONS, check_function
    with pytest.raises(TypeError, match="exactly one argument"):
        check_function("two_args")(lambda record, context: True)
    assert "two_args" not in CHECK_FUNCTIONS


@pytest.mark.parametrize("expression,message", [
    ("days_since(Name, Name) > `1`", "days_since() takes 1 argument(s), not 2"),
    ("contains(values('aws.s3.bucket'), Name)", "values() takes 2 argument(s), not 1"),
    ("length(Name) > `1` && starts_with(Name)", "starts_with() takes 2 argument(s), not 1"),
    ("merge() == `{}`", "merge() takes at least 1 argument(s), not 0"),
])
def test_expression_function_of_the_wrong_arity_is_refused(tmp_path, expression, message):
    path = write_catalog(tmp_path, lambda r: check_of(r, "s3-versioning").update(applies=expression))
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert f"check s3-versioning: field applies: {message}" in str(err.value)


def test_impossible_date_in_the_catalog_is_a_field_error(tmp_path):
    path = write_catalog(tmp_path, text=DEFAULT_PATH.read_text().replace("version: 1", "version: 2026-02-30", 1))
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert str(err.value) == f"{path}: field version: Input should be 1 (value '2026-02-30')"


def test_catalog_digest_is_of_the_file_bytes(tmp_path):
    """The catalog's bytes, a NUL byte, those of the company library it includes, two NUL bytes, then
    those of the company's parameters file."""
    import hashlib
    path = write_catalog(tmp_path, text=DEFAULT_PATH.read_text())
    library = DEFAULT_PATH.with_name("company-controls.yaml").read_bytes()
    parameters = DEFAULT_PATH.with_name("company-parameters.yaml").read_bytes()
    assert b"\ninclude: company-controls.yaml\n" in DEFAULT_PATH.read_bytes()
    assert b"\nparameters_file: company-parameters.yaml\n" in DEFAULT_PATH.read_bytes()
    assert load_catalog(path).sha256 == hashlib.sha256(DEFAULT_PATH.read_bytes() + b"\0" + library + b"\0\0"
                                                       + parameters).hexdigest()
    assert load_catalog(path).sha256 == load_catalog().sha256
