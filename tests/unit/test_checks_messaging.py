"""Issue 15, messaging and compute: SQS, SNS, Lambda, ECR and Kinesis checks on in-process moto (FAIL
naming the offending value, PASS, not applicable), the policy readings behind them, the company's
require_customer_managed_keys switch, and what moto cannot serve (botocore's Stubber)."""
import io
import json
import zipfile
import zlib
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from auditbook.catalog.model import load_catalog
from auditbook.collect.clients import ClientCache
from auditbook.collect.runner import Runner
from auditbook.collect.targets import Target, current_target
from auditbook.evaluate.evaluator import evaluate
from auditbook.plugins import resource_types
from collectors.policies import denies_insecure_transport, public_statements
from tests.catalog_edits import catalog_with_parameters as catalog_with
from tests.conftest import Fault, by_check, status_of

ROOT = Path(__file__).resolve().parents[2]
TYPES = ("aws.sqs.queue", "aws.sns.topic", "aws.lambda.function", "aws.ecr.repository", "aws.kinesis.stream")


def scan(catalog=None, gaps_expected=False):
    """Collect this area's types with the current (moto) credentials and evaluate the catalog."""
    catalog = catalog or load_catalog()
    clients = ClientCache(pool=4)
    rtypes = [resource_types()[name] for name in TYPES]
    collection = Runner(workers=2, clients=clients).run([current_target(clients)], ["us-east-1"], rtypes)
    if not gaps_expected:
        assert collection.gaps == [] and all(not r.gaps for r in collection.records)
    return collection, evaluate(catalog, collection)


def message_of(findings, check, name):
    found = by_check(findings, check, name)
    assert len(found) == 1 and found[0].status == "FAIL", [(f.status, f.message) for f in found]
    return found[0].message


def customer_key(aws, alias=None):
    kms = aws.client("kms")
    arn = kms.create_key(Description="app data")["KeyMetadata"]["Arn"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=arn)
    return arn


def statement(effect="Allow", action="sqs:SendMessage", principal="*", condition=None, sid="s"):
    out = {"Sid": sid, "Effect": effect, "Principal": principal, "Action": action, "Resource": "*"}
    if condition:
        out["Condition"] = condition
    return out


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


TLS_DENY = statement("Deny", "sqs:*", condition={"Bool": {"aws:SecureTransport": "false"}}, sid="tls")


# -- SQS -----------------------------------------------------------------------------------------------

def test_sqs_encryption_requires_a_customer_managed_key(aws, tmp_path):
    sqs = aws.client("sqs")
    sqs.create_queue(QueueName="plain", Attributes={"SqsManagedSseEnabled": "false"})
    sqs.create_queue(QueueName="sse-sqs")  # SSE-SQS is the default for new queues
    sqs.create_queue(QueueName="aws-managed", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})
    sqs.create_queue(QueueName="cmk", Attributes={"KmsMasterKeyId": customer_key(aws)})
    customer_key(aws, alias="alias/orders")
    sqs.create_queue(QueueName="cmk-alias", Attributes={"KmsMasterKeyId": "alias/orders"})
    _, findings = scan()
    check = "sqs-queue-encrypted-cmk"
    assert "queue encryption: none" in message_of(findings, check, "plain")
    assert "SSE-SQS" in message_of(findings, check, "sse-sqs")
    assert "alias/aws/sqs (AWS-managed)" in message_of(findings, check, "aws-managed")
    assert "required: a customer-managed KMS key" in message_of(findings, check, "aws-managed")
    assert status_of(findings, check, "cmk") == "PASS"
    assert status_of(findings, check, "cmk-alias") == "PASS"
    # a company that accepts any encryption at rest: only the unencrypted queue fails
    _, findings = scan(catalog_with(tmp_path, {"require_customer_managed_keys": False}))
    assert "required: encryption at rest" in message_of(findings, check, "plain")
    assert {status_of(findings, check, q) for q in ("sse-sqs", "aws-managed", "cmk")} == {"PASS"}


def test_sqs_public_and_tls_only_policies(aws):
    sqs = aws.client("sqs")
    sqs.create_queue(QueueName="open", Attributes={"Policy": policy(statement(sid="anyone"))})
    sqs.create_queue(QueueName="from-topic", Attributes={"Policy": policy(TLS_DENY, statement(
        condition={"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:t"}}))})
    sqs.create_queue(QueueName="no-policy")
    _, findings = scan()
    assert "anyone: Allow * sqs:SendMessage" in message_of(findings, "sqs-queue-not-public", "open")
    assert status_of(findings, "sqs-queue-not-public", "from-topic") == "PASS"
    assert status_of(findings, "sqs-queue-not-public", "no-policy") == "PASS"
    assert "no Deny for aws:SecureTransport false" in message_of(findings, "sqs-queue-tls-only", "no-policy")
    assert "policy present" in message_of(findings, "sqs-queue-tls-only", "open")
    assert status_of(findings, "sqs-queue-tls-only", "from-topic") == "PASS"


def test_sqs_dead_letter_queue(aws):
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(QueueName="orders", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})})
    sqs.create_queue(QueueName="lonely")
    _, findings = scan()
    assert status_of(findings, "sqs-queue-dead-letter", "orders") == "PASS"
    assert "no dead-letter queue" in message_of(findings, "sqs-queue-dead-letter", "lonely")
    assert by_check(findings, "sqs-queue-dead-letter", "orders-dlq") == []  # a dead-letter queue itself


def test_public_statement_reading():
    assert public_statements({"Statement": statement()}) == ["s: Allow * sqs:SendMessage"]  # one statement, no list
    assert public_statements({"Statement": [statement(principal={"AWS": ["*"]})]}) != []
    assert public_statements({"Statement": [statement(principal={"AWS": "arn:aws:iam::111111111111:root"})]}) == []
    assert public_statements({"Statement": [statement(principal={"Service": "sns.amazonaws.com"})]}) == []
    assert public_statements({"Statement": [{**statement(), "NotPrincipal": {"AWS": "x"}, "Principal": None}]}) != []
    restricted = {"StringEquals": {"AWS:SourceOwner": "123456789012"}}
    assert public_statements({"Statement": [statement(condition=restricted)]}) == []
    not_restricting = [
        {"StringNotEquals": {"aws:SourceAccount": "123456789012"}},  # everyone but one account
        {"StringEqualsIfExists": {"aws:SourceAccount": "123456789012"}},  # absent key: allowed
        {"StringLike": {"aws:SourceArn": "*"}},
        {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
        {"Bool": {"aws:SecureTransport": "true"}},
        {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
        {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:*"}},  # any account's topic
        {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::uploads-*"}},  # bucket names anyone can claim
        {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
    ]
    pinned = [{"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:123456789012:*"}},
              {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::uploads"}},
              {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}]
    for condition in pinned:
        assert public_statements({"Statement": [statement(condition=condition)]}) == [], condition
    for condition in not_restricting:
        assert public_statements({"Statement": [statement(condition=condition)]}) != [], condition
    assert public_statements(None) == [] and public_statements({"Statement": "bad"}) == []


def test_tls_only_reading():
    deny = lambda action, cond=None, principal="*": statement(  # noqa: E731
        "Deny", action, principal, cond or {"Bool": {"aws:SecureTransport": "false"}})
    both = ("sqs:sendmessage", "sqs:receivemessage")
    assert denies_insecure_transport({"Statement": [deny("SQS:*")]}, both)
    assert denies_insecure_transport({"Statement": [deny("*")]}, both)
    assert denies_insecure_transport({"Statement": [deny(["sqs:SendMessage", "sqs:ReceiveMessage"])]}, both)
    assert denies_insecure_transport({"Statement": [deny("sqs:*", {"BoolIfExists": {"AWS:SecureTransport": False}})]},
                                     both)
    assert not denies_insecure_transport({"Statement": [deny("sqs:SendMessage")]}, both)  # receive not covered
    assert not denies_insecure_transport({"Statement": [deny("sqs:*", {"Bool": {"aws:SecureTransport": "true"}})]},
                                         both)
    assert not denies_insecure_transport({"Statement": [deny("sqs:*", principal={"AWS": "arn:aws:iam::1:root"})]},
                                         both)
    not_action = {**deny("x"), "NotAction": "sqs:DeleteQueue"}
    not_action.pop("Action")
    assert denies_insecure_transport({"Statement": [not_action]}, both)
    assert not denies_insecure_transport(None, both)


# -- SNS -----------------------------------------------------------------------------------------------

def test_sns_encryption_policy_and_subscriptions(aws):
    sns = aws.client("sns")
    plain = sns.create_topic(Name="plain")["TopicArn"]
    sns.create_topic(Name="aws-managed", Attributes={"KmsMasterKeyId": "alias/aws/sns"})
    safe = sns.create_topic(Name="safe", Attributes={"KmsMasterKeyId": customer_key(aws)})["TopicArn"]
    sns.set_topic_attributes(TopicArn=safe, AttributeName="Policy", AttributeValue=policy(
        statement("Deny", "SNS:Publish", condition={"Bool": {"aws:SecureTransport": "false"}}),
        statement(action="SNS:Publish", condition={"StringEquals": {"AWS:SourceOwner": "123456789012"}})))
    sns.set_topic_attributes(TopicArn=plain, AttributeName="Policy",
                             AttributeValue=policy(statement(action="SNS:Publish", sid="open")))
    sns.subscribe(TopicArn=plain, Protocol="http", Endpoint="http://hooks.example.com/in?token=s3cr3t")
    sns.subscribe(TopicArn=safe, Protocol="https", Endpoint="https://hooks.example.com/in")
    collection, findings = scan()
    assert "topic encryption: none" in message_of(findings, "sns-topic-encrypted-cmk", "plain")
    assert "AWS-managed" in message_of(findings, "sns-topic-encrypted-cmk", "aws-managed")
    assert status_of(findings, "sns-topic-encrypted-cmk", "safe") == "PASS"
    assert "open: Allow * SNS:Publish" in message_of(findings, "sns-topic-not-public", "plain")
    assert status_of(findings, "sns-topic-not-public", "aws-managed") == "PASS"  # AWS's default policy
    assert status_of(findings, "sns-topic-not-public", "safe") == "PASS"
    assert "covering sns:Publish" in message_of(findings, "sns-topic-tls-only", "plain")
    assert status_of(findings, "sns-topic-tls-only", "safe") == "PASS"
    http = message_of(findings, "sns-subscriptions-https", "plain")
    assert "http://hooks.example.com" in http and "s3cr3t" not in http
    assert status_of(findings, "sns-subscriptions-https", "safe") == "PASS"
    record = next(r for r in collection.records if r.type == "aws.sns.topic" and r.data["TopicName"] == "plain")
    assert record.data["http_subscriptions"] == ["http://hooks.example.com"]


# -- Lambda --------------------------------------------------------------------------------------------

def _function(aws, name, runtime="python3.12", **extra):
    role = "arn:aws:iam::123456789012:role/fn"
    try:
        aws.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps({"Statement": []}))
    except aws.client("iam").exceptions.EntityAlreadyExistsException:
        pass
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def h(event, context):\n    return 1\n")
    aws.client("lambda").create_function(FunctionName=name, Runtime=runtime, Role=role, Handler="h.h",
                                         Code={"ZipFile": code.getvalue()}, **extra)


def test_lambda_environment_encryption_never_keeps_the_values(aws):
    _function(aws, "env-default", Environment={"Variables": {"DB_PASSWORD": "hunter2-secret"}})
    _function(aws, "env-cmk", Environment={"Variables": {"API_TOKEN": "tok-secret"}}, KMSKeyArn=customer_key(aws))
    _function(aws, "no-env")
    collection, findings = scan()
    check = "lambda-env-encrypted-cmk"
    assert "aws/lambda" in message_of(findings, check, "env-default")
    assert status_of(findings, check, "env-cmk") == "PASS"
    assert by_check(findings, check, "no-env") == []
    records = json.dumps([r.data for r in collection.records])
    evidence = b"".join(zlib.decompress(v) for v in collection.evidence.values())
    assert b"hunter2-secret" not in evidence and b"tok-secret" not in evidence
    assert "hunter2-secret" not in records and "tok-secret" not in records and "DB_PASSWORD" not in records


def test_lambda_url_policy_and_runtime(aws):
    lam = aws.client("lambda")
    _function(aws, "public-url", runtime="python3.8")
    lam.create_function_url_config(FunctionName="public-url", AuthType="NONE")
    lam.add_permission(FunctionName="public-url", StatementId="url", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE")
    _function(aws, "iam-url")
    lam.create_function_url_config(FunctionName="iam-url", AuthType="AWS_IAM")
    lam.add_permission(FunctionName="iam-url", StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::uploads")
    _function(aws, "no-url", runtime="nodejs22.x")
    _, findings = scan()
    assert "auth type is NONE" in message_of(findings, "lambda-url-auth-required", "public-url")
    assert status_of(findings, "lambda-url-auth-required", "iam-url") == "PASS"
    assert by_check(findings, "lambda-url-auth-required", "no-url") == []
    assert "url: Allow * lambda:InvokeFunctionUrl" in message_of(findings, "lambda-policy-not-public", "public-url")
    assert status_of(findings, "lambda-policy-not-public", "iam-url") == "PASS"
    assert status_of(findings, "lambda-policy-not-public", "no-url") == "PASS"
    assert "runtime python3.8 is deprecated" in message_of(findings, "lambda-runtime-supported", "public-url")
    assert status_of(findings, "lambda-runtime-supported", "iam-url") == "PASS"
    assert status_of(findings, "lambda-runtime-supported", "no-url") == "PASS"


def test_lambda_container_image_has_no_runtime_to_judge():
    """moto cannot create image functions without a registry image; the Stubber answers as AWS does."""
    client = boto3.client("lambda", region_name="us-east-1")
    stub = Stubber(client)
    arn = "arn:aws:lambda:us-east-1:111111111111:function:img"
    stub.add_response("list_functions", {"Functions": [{"FunctionName": "img", "FunctionArn": arn,
                                                        "PackageType": "Image"}]}, {})
    stub.add_client_error("get_function_url_config", "ResourceNotFoundException", http_status_code=404)
    stub.add_client_error("get_policy", "ResourceNotFoundException", http_status_code=404)
    stub.add_response("list_tags", {"Tags": {"SOC2_Control": "CC6.1"}}, {"Resource": arn})
    with stub:
        collection = _stubbed_run(client, "lambda", "aws.lambda.function")
    stub.assert_no_pending_responses()
    record = collection.records[0]
    assert record.gaps == {} and record.tags == {"SOC2_Control": "CC6.1"}
    findings = evaluate(load_catalog(), collection)
    assert by_check(findings, "lambda-runtime-supported") == []
    assert status_of(findings, "lambda-policy-not-public", "img") == "PASS"


# -- ECR -----------------------------------------------------------------------------------------------

def test_ecr_scanning_tags_encryption_and_policy(aws):
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="loose")
    ecr.set_repository_policy(repositoryName="loose", policyText=policy(statement(
        action=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], sid="pull")))
    ecr.create_repository(repositoryName="tight", imageTagMutability="IMMUTABLE",
                          imageScanningConfiguration={"scanOnPush": True},
                          encryptionConfiguration={"encryptionType": "KMS", "kmsKey": customer_key(aws)})
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[{
        "scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "ruled-*", "filterType": "WILDCARD"}]}])
    ecr.create_repository(repositoryName="ruled-app")
    _, findings = scan()
    assert "scan frequency MANUAL" in message_of(findings, "ecr-scan-on-push", "loose")
    assert status_of(findings, "ecr-scan-on-push", "tight") == "PASS"  # the repository's own flag (BASIC)
    assert status_of(findings, "ecr-scan-on-push", "ruled-app") == "PASS"  # a registry rule
    assert "mutability MUTABLE" in message_of(findings, "ecr-immutable-tags", "loose")
    assert status_of(findings, "ecr-immutable-tags", "tight") == "PASS"
    assert "AES-256 (ECR-managed key)" in message_of(findings, "ecr-encrypted-cmk", "loose")
    assert status_of(findings, "ecr-encrypted-cmk", "tight") == "PASS"
    assert "pull: Allow * ecr:BatchGetImage" in message_of(findings, "ecr-policy-not-public", "loose")
    assert status_of(findings, "ecr-policy-not-public", "tight") == "PASS"


def test_ecr_enhanced_scanning_ignores_the_repository_flag():
    client = boto3.client("ecr", region_name="us-east-1")
    stub = Stubber(client)
    repo = lambda name: {"repositoryName": name, "repositoryArn": f"arn:aws:ecr:us-east-1:111111111111:repository/{name}",  # noqa: E731
                         "imageScanningConfiguration": {"scanOnPush": True}, "imageTagMutability": "IMMUTABLE",
                         "encryptionConfiguration": {"encryptionType": "AES256"}}
    stub.add_response("describe_repositories", {"repositories": [repo("old-flag")]}, {})
    stub.add_response("get_registry_scanning_configuration",
                      {"registryId": "111111111111", "scanningConfiguration": {"scanType": "ENHANCED", "rules": []}}, {})
    stub.add_response("batch_get_repository_scanning_configuration", {"scanningConfigurations": [{
        "repositoryName": "old-flag", "scanOnPush": True, "scanFrequency": "MANUAL"}]}, {"repositoryNames": ["old-flag"]})
    stub.add_client_error("get_repository_policy", "RepositoryPolicyNotFoundException")
    stub.add_response("list_tags_for_resource", {"tags": []}, None)
    with stub:
        collection = _stubbed_run(client, "ecr", "aws.ecr.repository")
    stub.assert_no_pending_responses()
    assert collection.records[0].data["scan_on_push"] is False


# -- Kinesis -------------------------------------------------------------------------------------------

def test_kinesis_encryption_and_retention(aws):
    kinesis = aws.client("kinesis")
    for name in ("bare", "aws-managed", "safe"):
        kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.start_stream_encryption(StreamName="aws-managed", EncryptionType="KMS", KeyId="alias/aws/kinesis")
    kinesis.start_stream_encryption(StreamName="safe", EncryptionType="KMS", KeyId=customer_key(aws))
    kinesis.increase_stream_retention_period(StreamName="safe", RetentionPeriodHours=168)
    _, findings = scan()
    assert "stream encryption: none" in message_of(findings, "kinesis-stream-encrypted-cmk", "bare")
    assert "alias/aws/kinesis (AWS-managed)" in message_of(findings, "kinesis-stream-encrypted-cmk", "aws-managed")
    assert status_of(findings, "kinesis-stream-encrypted-cmk", "safe") == "PASS"
    assert message_of(findings, "kinesis-stream-retention", "bare") == "retention 24 hours, required 168"
    assert status_of(findings, "kinesis-stream-retention", "safe") == "PASS"


def test_key_checks_do_not_apply_when_the_company_accepts_any_encryption(aws, tmp_path):
    aws.client("ecr").create_repository(repositoryName="aes")
    _function(aws, "env-default", Environment={"Variables": {"STAGE": "x"}})
    _, findings = scan()
    assert status_of(findings, "ecr-encrypted-cmk", "aes") == "FAIL"
    assert status_of(findings, "lambda-env-encrypted-cmk", "env-default") == "FAIL"
    _, findings = scan(catalog_with(tmp_path, {"require_customer_managed_keys": False}))
    assert by_check(findings, "ecr-encrypted-cmk") == [] and by_check(findings, "lambda-env-encrypted-cmk") == []
    assert status_of(findings, "ecr-immutable-tags", "aes") == "FAIL"  # the rest still judged


# -- what moto does not show ---------------------------------------------------------------------------

def _stubbed_run(client, service, rtype):
    clients = ClientCache(pool=2)
    clients._clients[(service, "us-east-1")] = client
    return Runner(workers=1, clients=clients).run([Target("111111111111", "a", object())], ["us-east-1"],
                                                  [resource_types()[rtype]])


def test_sqs_lists_past_a_thousand_queues():
    """Without MaxResults ListQueues stops at 1,000 queues with no NextToken; the list asks for pages."""
    client = boto3.client("sqs", region_name="us-east-1")
    stub = Stubber(client)
    url = "https://sqs.us-east-1.amazonaws.com/111111111111/q{}".format
    stub.add_response("list_queues", {"QueueUrls": [url(1)], "NextToken": "t"}, {"MaxResults": 1000})
    stub.add_response("list_queues", {"QueueUrls": [url(2)]}, {"MaxResults": 1000, "NextToken": "t"})
    bare = resource_types()["aws.sqs.queue"]
    bare = type(bare)(name=bare.name, service=bare.service, list=bare.list, id=bare.id)
    clients = ClientCache(pool=2)
    clients._clients[("sqs", "us-east-1")] = client
    with stub:
        collection = Runner(workers=1, clients=clients).run([Target("111111111111", "a", object())], ["us-east-1"], [bare])
    stub.assert_no_pending_responses()
    assert sorted(r.id for r in collection.records) == [url(1), url(2)]


def test_a_key_that_cannot_be_read_is_a_gap_not_a_fail(aws, inject):
    sqs = aws.client("sqs")
    sqs.create_queue(QueueName="cmk", Attributes={"KmsMasterKeyId": customer_key(aws)})
    inject(Fault("DescribeKey", "AccessDeniedException"))
    collection, findings = scan(gaps_expected=True)
    record = next(r for r in collection.records if r.type == "aws.sqs.queue")
    assert "kms_key" in record.gaps
    assert status_of(findings, "sqs-queue-encrypted-cmk", "cmk") == "ERROR"


@pytest.mark.parametrize("rtype", TYPES)
def test_each_type_declares_its_tags(rtype):
    assert resource_types()[rtype].tags  # declared controls read these records' tags
