"""store.run_reach: what one run reached — accounts read (with records), accounts it could not reach
(by the run's identities and by their AccountUnreachable gaps), gaps by error."""
import yaml

from tests.conftest import Fault

DENIED = "210987654321"


def test_a_run_names_the_account_it_could_not_reach_and_counts_the_rest(aws, inject, tmp_path):
    from auditbook.scan import run_scan
    from auditbook.store.db import open_engine
    from auditbook.store.run_reach import run_reach
    from auditbook.store.session import reading

    aws.client("s3").create_bucket(Bucket="reach-bucket")
    me = aws.client("sts").get_caller_identity()["Account"]
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(yaml.safe_dump({"accounts": [{"id": me, "name": "home"},
                                                     {"id": DENIED, "role": "AuditRole", "name": "denied"}]}))
    inject(Fault("AssumeRole", "AccessDenied", 403, match=lambda req: f"::{DENIED}:" in str(req["body"].get("RoleArn"))))
    db = f"sqlite:///{tmp_path / 'store.db'}"
    result = run_scan(accounts_file=accounts, regions="us-east-1", db=db)
    with reading(open_engine(db, create=False)) as session:
        reach = run_reach(session, result.run_id)
    assert reach["run_id"] == result.run_id and reach["api_calls"] == result.collection.calls > 0
    assert reach["accounts"] == 2
    assert reach["unreachable"] == reach["unreachable_in_identities"] == reach["unreachable_in_gaps"] == [DENIED]
    assert reach["accounts_with_records"] == 1 and reach["resources"] >= 1
    assert reach["reached_without_records"] == []
    assert next(iter(reach["gaps_by_error"])) == "AccountUnreachable"
