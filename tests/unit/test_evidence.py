import datetime as dt

from auditbook.collect.evidence import REDACTED, canonical, clean_response, digest


def test_redaction_at_any_depth_and_metadata_dropped():
    resp = {"ResponseMetadata": {"RequestId": "x"},
            "Credentials": {"AccessKeyId": "AKIA", "SecretAccessKey": "s"},
            "DBInstances": [{"MasterUserPassword": "hunter2", "Name": "db",
                             "Nested": {"secretstring": "x", "Variables": {"TOKEN": "t"}}}]}
    out = clean_response(resp)
    assert "ResponseMetadata" not in out
    assert out["Credentials"] == REDACTED
    db = out["DBInstances"][0]
    assert db["MasterUserPassword"] == REDACTED and db["Nested"]["secretstring"] == REDACTED
    assert db["Nested"]["Variables"] == REDACTED and db["Name"] == "db"
    assert "hunter2" not in canonical(out).decode()


def test_canonical_hash_is_stable():
    a = clean_response({"B": 1, "A": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)})
    b = clean_response({"A": dt.datetime(2026, 1, 1), "B": 1})
    assert canonical(a) == canonical(b) == b'{"A":"2026-01-01T00:00:00Z","B":1}'
    assert digest(canonical(a)) == digest(canonical(b))


def test_cloudtrail_redaction_keeps_names_and_drops_every_value_of_environments_and_secret_pairs():
    from auditbook.collect.evidence import redact_cloudtrail
    record = {
        "eventSource": "CloudFormation.amazonaws.com", "eventName": "CreateStack",
        "requestParameters": {
            "stackName": "db",
            "parameters": [{"parameterKey": "DbPassword", "parameterValue": "p1"},
                           {"parameterKey": "Size", "parameterValue": "p2", "usePreviousValue": False}],
            "containerDefinitions": [{"name": "api", "secrets": [{"name": "DB", "valueFrom": "p3"}],
                                      "environment": [{"name": "NAME", "value": {"nested": ["p4"]}}]}],
            "environment": {"type": "LINUX_CONTAINER", "environmentVariables": [
                {"name": "TOKEN", "value": "p5", "type": "PLAINTEXT"}]},
            "Environment": {"NAME": "p6", "Variables": {"K": "p7"}},  # a map: its keys are the names
            "tags": [{"key": "db-password", "value": "p8"}, {"key": "team", "value": "payments"}],
            "settings": [{"Name": "SIGNING_KEY", "Value": "p9"}, {"Name": "region", "Value": "eu-west-1"}],
        },
        "responseElements": "{\"password\": \"p10\"}",  # logged as text: JSON CloudTrail did not parse
        "additionalEventData": {"empty": "", "environment": None},
    }
    kept = redact_cloudtrail(record)
    text = canonical(kept).decode()
    assert not [f"p{n}" for n in range(1, 11) if f'"p{n}"' in text or f'\\"p{n}\\"' in text]
    params = kept["requestParameters"]
    assert params["stackName"] == "db" and [p["parameterKey"] for p in params["parameters"]] == ["DbPassword", "Size"]
    assert params["containerDefinitions"][0]["secrets"] == [{"name": "DB", "valueFrom": REDACTED}]
    assert params["containerDefinitions"][0]["environment"] == [{"name": "NAME", "value": {"nested": [REDACTED]}}]
    assert params["environment"]["environmentVariables"][0]["name"] == "TOKEN"
    assert params["Environment"] == {"NAME": REDACTED, "Variables": {"K": REDACTED}}
    assert params["tags"][1] == {"key": "team", "value": "payments"}  # not a secret name: kept
    assert params["settings"][1] == {"Name": "region", "Value": "eu-west-1"}
    assert kept["responseElements"] == REDACTED and kept["additionalEventData"] == {"empty": "", "environment": None}
    # `parameters` of other services are not a stack's: kept, unless their names say secret
    other = redact_cloudtrail({"eventSource": "rds.amazonaws.com", "requestParameters": {"parameters": [
        {"parameterName": "max_connections", "parameterValue": "100"},
        {"parameterName": "password_encryption", "parameterValue": "scram-sha-256"}]}})
    assert [p["parameterValue"] for p in other["requestParameters"]["parameters"]] == ["100", REDACTED]
    # Parameter Store's value, however the source is spelled
    for source in ("ssm.amazonaws.com", "SSM.amazonaws.com", "Ssm.Amazonaws.Com"):
        ssm = redact_cloudtrail({"eventSource": source, "requestParameters": {"name": "/x", "value": "v"}})
        assert ssm["requestParameters"] == {"name": "/x", "value": REDACTED}
    assert record["requestParameters"]["parameters"][0]["parameterValue"] == "p1"  # the input is not changed


def test_api_evidence_redaction_is_unchanged_by_the_cloudtrail_rules():
    out = clean_response({"Stacks": [{"StackName": "s", "Parameters": [{"ParameterKey": "Size", "ParameterValue": "2"}]}],
                          "Tags": [{"Key": "db-password", "Value": "v"}]})
    assert out["Stacks"][0]["Parameters"][0]["ParameterValue"] == "2" and out["Tags"][0]["Value"] == "v"


def test_urls_in_evidence_lose_their_credentials_and_webhook_endpoints_their_path():
    """A subscription endpoint, a presigned URL, a URL with a password: the token never reaches the
    evidence (issue 15: SNS subscriptions), in API answers and CloudTrail records alike; plain URLs stay."""
    from auditbook.collect.evidence import REDACTED, clean_response, redact_cloudtrail
    answer = {"Subscriptions": [{"Protocol": "https", "Endpoint": "https://hooks.example.test/services/T1/B2/s3cr3t"},
                                {"Protocol": "http", "Endpoint": "http://collector.example.test/in?token=s3cr3t"}],
              "Links": ["https://user:s3cr3t@git.example.test/repo.git", "https://b.s3.amazonaws.com/k?X-Amz-Signature=s3cr3t"],
              "QueueUrl": "https://sqs.us-east-1.amazonaws.com/111111111111/orders",
              "Description": "see https://example.test/doc?x=1 for more"}
    cleaned = clean_response(answer)
    text = str(cleaned)
    assert "s3cr3t" not in text
    assert cleaned["Subscriptions"][0]["Endpoint"] == f"https://hooks.example.test/{REDACTED}"
    assert cleaned["Links"][0] == f"https://{REDACTED}@git.example.test/repo.git"
    assert cleaned["QueueUrl"] == answer["QueueUrl"]  # an identifier: its path stays
    assert cleaned["Description"] == f"see https://example.test/doc?{REDACTED} for more"  # a URL inside text too
    record = {"eventSource": "sns.amazonaws.com", "eventName": "Subscribe",
              "requestParameters": {"protocol": "https", "endpoint": "https://hooks.example.test/T1/s3cr3t"},
              "responseElements": {"subscriptionArn": "arn:aws:sns:us-east-1:111111111111:t:1",
                                   "link": "https://h.example.test/confirm?Token=s3cr3t"}}
    assert "s3cr3t" not in str(redact_cloudtrail(record))
