"""A failing finding says what the resource holds (issue 14 §4): the offending value read from the
check's own expression, redacted and bounded, for any expression of the catalog."""
import pytest

from auditbook.catalog.expressions import compile_expression
from auditbook.catalog.model import load_catalog
from auditbook.evaluate.observed import MAX_CHARS, observed

SG = "length(public_ingress[?!(protocol=='tcp' && from_port==`443` && to_port==`443`)]) == `0`"


def test_a_length_check_names_the_offending_items_and_what_was_expected():
    found = observed(compile_expression(SG), {"public_ingress": [
        {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"},
        {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr": "0.0.0.0/0"}]})
    assert found == ('found public_ingress[?…] = [{"cidr": "0.0.0.0/0", "from_port": 22, "protocol": "tcp", '
                     '"to_port": 22}] (expected length == 0)')


@pytest.mark.parametrize("expect, data, said", [
    ("versioning == 'Enabled' && mfa_delete", {"versioning": "Suspended"}, 'found versioning = "Suspended" (expected == "Enabled")'),
    ("versioning == 'Enabled' && mfa_delete", {"versioning": "Enabled", "mfa_delete": False}, "found mfa_delete = false"),
    ("encrypted || kms_key_id", {"encrypted": False}, "found encrypted = false; found kms_key_id = null"),
    ("policy.rotation.days <= `90`", {"policy": {"rotation": {"days": 400}}}, "found policy.rotation.days = 400 (expected <= 90)"),
    ("!public", {"public": True}, "found public = true"),
])
def test_each_kind_of_expression_is_explained_by_the_part_that_failed(expect, data, said):
    assert observed(compile_expression(expect), data) == said


def test_values_are_redacted_and_bounded():
    found = observed(compile_expression("!environment"), {"environment": {"DB_PASSWORD": "hunter2", "pad": "x" * 500}})
    assert "hunter2" not in found and "REDACTED" in found.upper() and len(found) <= len("found environment = ") + MAX_CHARS


def test_every_check_of_the_catalog_is_explained_or_left_alone_never_a_crash():
    for check in load_catalog().checks:
        if check.expect:
            for data in ({}, {"x": None}):
                said = observed(compile_expression(check.expect), data)
                assert said is None or said.startswith("found "), (check.id, said)
