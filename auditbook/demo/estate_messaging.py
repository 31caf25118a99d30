"""Issue 15 coverage, messaging: the demo estate's planted violations and compliant twins for this area.

PLANTED / COMPLIANT: (check id, account name, resource name as in the finding) — the scan must FAIL
each planted one and PASS each twin (tests/unit/test_demo_estate.py). plant(accounts) builds them:
accounts is {account name: demo.estate.Account} (names: master, audit-logs, prod-us-east, staging).
This module must not import auditbook.demo.estate at module level (estate imports it).

staging holds one queue, topic, function, repository and stream that break every check of their type
(AWS-managed or no encryption, public grants, no TLS-only statement, plain-HTTP delivery, a deprecated
runtime, a public function URL, mutable tags, no scanning, short retention); prod-us-east holds their
compliant twins (a customer-managed key, TLS-only policies, grants pinned by condition)."""
from __future__ import annotations

import io
import json
import zipfile

QUEUE, TOPIC, FUNCTION, REPOSITORY, STREAM = "orders", "alerts", "webhook", "images", "events"
CHECKS = {
    QUEUE: ["sqs-queue-encrypted-cmk", "sqs-queue-tls-only", "sqs-queue-not-public", "sqs-queue-dead-letter"],
    TOPIC: ["sns-topic-encrypted-cmk", "sns-topic-tls-only", "sns-topic-not-public", "sns-subscriptions-https"],
    FUNCTION: ["lambda-env-encrypted-cmk", "lambda-url-auth-required", "lambda-policy-not-public",
               "lambda-runtime-supported"],
    REPOSITORY: ["ecr-scan-on-push", "ecr-immutable-tags", "ecr-encrypted-cmk", "ecr-policy-not-public"],
    STREAM: ["kinesis-stream-encrypted-cmk", "kinesis-stream-retention"],
}
PLANTED: list[tuple[str, str, str]] = [(c, "staging", f"staging-{r}") for r, checks in CHECKS.items() for c in checks]
COMPLIANT: list[tuple[str, str, str]] = [(c, "prod-us-east", f"prod-{r}") for r, checks in CHECKS.items() for c in checks]


def _policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _tls_only(action: str) -> dict:
    return {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": action, "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def _anyone(action, sid: str, condition=None) -> dict:
    out = {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": action, "Resource": "*"}
    return {**out, "Condition": condition} if condition else out


def _queues(acct, prefix: str, key) -> None:
    sqs = acct.c("sqs")
    if key is None:  # SSE-SQS (the default), anyone may send, no TLS-only statement, no dead-letter queue
        sqs.create_queue(QueueName=f"{prefix}-{QUEUE}", Attributes={"Policy": _policy(_anyone(
            "sqs:SendMessage", "AnyoneMaySend"))})
        return
    dlq = sqs.create_queue(QueueName=f"{prefix}-{QUEUE}-dlq", Attributes={
        "KmsMasterKeyId": key, "Policy": _policy(_tls_only("sqs:*"))})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = f"arn:aws:sns:us-east-1:{acct.id}:{prefix}-{TOPIC}"
    sqs.create_queue(QueueName=f"{prefix}-{QUEUE}", Attributes={
        "KmsMasterKeyId": key,
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        "Policy": _policy(_tls_only("sqs:*"), _anyone("sqs:SendMessage", "FromAlertsTopic",
                                                      {"ArnEquals": {"aws:SourceArn": topic}}))})


def _topic(acct, prefix: str, key) -> None:
    sns = acct.c("sns")
    name = f"{prefix}-{TOPIC}"
    if key is None:  # unencrypted, anyone may publish, a webhook over plain HTTP
        arn = sns.create_topic(Name=name)["TopicArn"]
        sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy",
                                 AttributeValue=_policy(_anyone("SNS:Publish", "AnyoneMayPublish")))
        sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://hooks.example.test/alerts?token=demo-not-secret")
        return
    arn = sns.create_topic(Name=name, Attributes={"KmsMasterKeyId": key})["TopicArn"]
    sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=_policy(
        _tls_only("SNS:Publish"),
        _anyone("SNS:Publish", "OwnerMayPublish", {"StringEquals": {"AWS:SourceOwner": acct.id}})))
    queue = acct.c("sqs").get_queue_url(QueueName=f"{prefix}-{QUEUE}")["QueueUrl"]
    queue_arn = acct.c("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)


def _function(acct, prefix: str, key) -> None:
    role = acct.c("iam").create_role(RoleName=f"{prefix}-{FUNCTION}-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return {'statusCode': 200}\n")
    lam, name = acct.c("lambda"), f"{prefix}-{FUNCTION}"
    extra = {"KMSKeyArn": key} if key else {}
    lam.create_function(FunctionName=name, Runtime="python3.12" if key else "python3.8", Role=role,
                        Handler="handler.handle", Code={"ZipFile": code.getvalue()},
                        Environment={"Variables": {"STAGE": prefix, "SIGNING_KEY": "demo-value-not-secret"}}, **extra)
    lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM" if key else "NONE")
    if key:
        lam.add_permission(FunctionName=name, StatementId="UploadsBucket", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{prefix}-uploads", SourceAccount=acct.id)
    else:
        lam.add_permission(FunctionName=name, StatementId="PublicUrl", Action="lambda:InvokeFunctionUrl",
                           Principal="*", FunctionUrlAuthType="NONE")


def _repository(acct, prefix: str, key, org_id: str) -> None:
    ecr, name = acct.c("ecr"), f"{prefix}-{REPOSITORY}"
    pull = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    if key is None:  # mutable tags, no scanning, ECR's own AES-256 key, anyone may pull
        ecr.create_repository(repositoryName=name)
        ecr.set_repository_policy(repositoryName=name, policyText=_policy(_anyone(pull, "AnyoneMayPull")))
        return
    ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE",
                          imageScanningConfiguration={"scanOnPush": True},
                          encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key})
    ecr.set_repository_policy(repositoryName=name, policyText=_policy(_anyone(
        pull, "OrganisationMayPull", {"StringEquals": {"aws:PrincipalOrgID": org_id}})))


def _stream(acct, prefix: str, key) -> None:
    kinesis, name = acct.c("kinesis"), f"{prefix}-{STREAM}"
    kinesis.create_stream(StreamName=name, ShardCount=1)  # unencrypted, 24 hours (AWS's defaults)
    if key:
        kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=key)
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=168)


def plant(accounts: dict) -> None:
    """Build this area's resources in the simulated organisation."""
    prod, staging = accounts["prod-us-east"], accounts["staging"]
    org_id = accounts["master"].c("organizations").describe_organization()["Organization"]["Id"]
    key = prod.key("prod-messaging")
    for acct, prefix, with_key in ((staging, "staging", None), (prod, "prod", key)):
        _queues(acct, prefix, with_key)
        _topic(acct, prefix, with_key)
        _function(acct, prefix, with_key)
        _repository(acct, prefix, with_key, org_id)
        _stream(acct, prefix, with_key)
