"""Coverage checks the demo estate cannot plant (time, absence, clusters) and the pure parts behind
them (filter patterns, NACL rule order, trust policies, tag and account scoping)."""
import datetime as dt
import json

from freezegun import freeze_time

from auditbook.catalog.model import Check
from auditbook.collect.records import tag_dict
from collectors.ec2 import _network_acl
from collectors.iam import _role
from collectors.logs import CIS_FILTER_PATTERNS, matched_events
from tests.conftest import by_check, collect_current, status_of


def test_credentials_unused_for_45_days(aws):
    iam = aws.client("iam")
    with freeze_time(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=60)):
        iam.create_user(UserName="stale")
        iam.create_access_key(UserName="stale")
    iam.create_user(UserName="fresh")
    iam.create_access_key(UserName="fresh")
    iam.create_user(UserName="no-credentials")
    _, findings = collect_current()
    assert status_of(findings, "iam-credentials-unused-45-days", "stale") == "FAIL"
    assert status_of(findings, "iam-credentials-unused-45-days", "fresh") == "PASS"
    assert by_check(findings, "iam-credentials-unused-45-days", "no-credentials") == []  # not applicable


def test_no_backup_plan_fails_the_account(aws):
    _, findings = collect_current()
    assert status_of(findings, "backup-plan-exists", "account") == "FAIL"
    backup = aws.client("backup")
    backup.create_backup_vault(BackupVaultName="v")
    backup.create_backup_plan(BackupPlan={"BackupPlanName": "p", "Rules": [{
        "RuleName": "r", "TargetBackupVaultName": "v", "Lifecycle": {"DeleteAfterDays": 35}}]})
    _, findings = collect_current()
    assert status_of(findings, "backup-plan-exists", "account") == "PASS"


def test_public_cluster_snapshot(aws):
    rds = aws.client("rds")
    rds.create_db_cluster(DBClusterIdentifier="c1", Engine="aurora-postgresql", MasterUsername="a",
                          MasterUserPassword="password-123")
    for name, public in (("open-snap", True), ("closed-snap", False)):
        rds.create_db_cluster_snapshot(DBClusterIdentifier="c1", DBClusterSnapshotIdentifier=name)
        if public:
            rds.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier=name, AttributeName="restore",
                                                     ValuesToAdd=["all"])
    _, findings = collect_current()
    assert status_of(findings, "rds-cluster-snapshot-not-public", "open-snap") == "FAIL"
    assert status_of(findings, "rds-cluster-snapshot-not-public", "closed-snap") == "PASS"


def test_guardduty_and_config_absent_in_a_region_fail(aws):
    aws.client("guardduty", region_name="us-east-1").create_detector(Enable=True)
    _, findings = collect_current(regions=("us-east-1", "eu-west-1"))
    assert status_of(findings, "guardduty-enabled", "us-east-1") == "PASS"
    assert status_of(findings, "guardduty-enabled", "eu-west-1") == "FAIL"
    assert {f.status for f in by_check(findings, "config-recording-all-resources")} == {"FAIL"}


def test_each_cis_pattern_matches_only_its_event():
    for event, pattern in CIS_FILTER_PATTERNS.items():
        assert matched_events(pattern) == [event]
    # spacing and quoting do not matter; a partial pattern is not enough
    assert matched_events('{($.eventName=ConsoleLogin)&&($.additionalEventData.MFAUsed!="Yes")}') == \
        ["console-login-without-mfa"]
    assert matched_events('{ $.errorCode = "*UnauthorizedOperation" }') == []


def test_alarm_without_actions_does_not_count(aws):
    logs, cw = aws.client("logs"), aws.client("cloudwatch")
    logs.create_log_group(logGroupName="trail-group")
    logs.put_metric_filter(logGroupName="trail-group", filterName="root", filterPattern=CIS_FILTER_PATTERNS["root-usage"],
                           metricTransformations=[{"metricName": "Root", "metricNamespace": "CIS", "metricValue": "1"}])
    cw.put_metric_alarm(AlarmName="root", MetricName="Root", Namespace="CIS", Statistic="Sum", Period=300,
                        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    collection, _ = collect_current()
    record = [r for r in collection.records if r.type == "aws.logs.security_monitoring"][0]
    assert record.data["monitored_events"] == []
    cw.put_metric_alarm(AlarmName="root", MetricName="Root", Namespace="CIS", Statistic="Sum", Period=300,
                        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        AlarmActions=["arn:aws:sns:us-east-1:123456789012:sec"])
    collection, findings = collect_current()
    record = [r for r in collection.records if r.type == "aws.logs.security_monitoring"][0]
    assert record.data["monitored_events"] == ["root-usage"]
    # no trail delivers to that log group, so the alarm is not evidence of CloudTrail monitoring
    assert status_of(findings, "cw-alarm-root-usage", "account") == "FAIL"


def test_nacl_first_matching_rule_decides():
    def entry(number, action, port=None, cidr="0.0.0.0/0"):
        e = {"RuleNumber": number, "RuleAction": action, "Egress": False, "CidrBlock": cidr, "Protocol": "-1"}
        if port:
            e.update(Protocol="6", PortRange={"From": port, "To": port})
        return e
    assert _network_acl({"Entries": [entry(100, "allow")]}, {})["open_admin_ports"] == [22, 3389]
    assert _network_acl({"Entries": [entry(10, "deny", 22), entry(100, "allow")]}, {})["open_admin_ports"] == [3389]
    assert _network_acl({"Entries": [entry(100, "allow", cidr="10.0.0.0/8")]}, {})["open_admin_ports"] == []
    assert _network_acl({"Entries": [entry(200, "deny", 22), entry(100, "allow", 22)]}, {})["open_admin_ports"] == [22]


def test_role_trust_outside_the_account():
    doc = {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::999999999999:root", "arn:aws:iam::111111111111:role/x"]},
         "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"AWS": "888888888888"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"sts:ExternalId": "abc"}}},
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = _role({"Arn": "arn:aws:iam::111111111111:role/r", "AssumeRolePolicyDocument": json.dumps(doc)}, {})
    assert role["trusted_accounts"] == ["888888888888", "999999999999"]
    assert {e["account"]: e["external_id"] for e in role["external_principals"]} == \
        {"999999999999": False, "888888888888": True}


def test_tag_dict_reads_every_aws_spelling():
    assert tag_dict([{"Key": "a", "Value": "1"}]) == {"a": "1"}
    assert tag_dict([{"key": "a", "value": "1"}]) == {"a": "1"}
    assert tag_dict([{"TagKey": "a", "TagValue": "1"}]) == {"a": "1"}
    assert tag_dict({"a": "1"}) == {"a": "1"}
    assert tag_dict(None) == {}


def test_scoping_by_tag_and_account():
    check = Check(id="x-check", title="title", controls=["CC6.1"], resource="aws.s3.bucket", expect="`true`",
                  severity="low", remediation="do something", actions=["s3:ListAllMyBuckets"],
                  tags={"environment": ["production", "prod"]}, accounts=["111111111111"])
    assert check.in_scope("111111111111", {"environment": "prod"})
    assert not check.in_scope("111111111111", {"environment": "staging"})
    assert not check.in_scope("111111111111", {})
    assert not check.in_scope("222222222222", {"environment": "prod"})


def test_tag_scoped_check_skips_untagged_buckets(aws):
    s3 = aws.client("s3")
    for name, tags in (("secret-data", {"data-classification": "restricted"}), ("public-site", {})):
        s3.create_bucket(Bucket=name)
        if tags:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    _, findings = collect_current()
    assert status_of(findings, "s3-access-logging-sensitive", "secret-data") == "FAIL"
    assert by_check(findings, "s3-access-logging-sensitive", "public-site") == []
