"""Issue 15, access: network (security-group egress and ingress against approved networks, NAT gateways,
internet-gateway routes), TLS (forward secrecy derived from the policy's ciphers, HTTP redirects, HTTPS
to targets), identity (cross-account session length, admin roles without MFA, external trust) and the
logging architecture (the trail's bucket outside the account it records) — each on in-process moto:
FAIL naming the offending value, PASS, not applicable; and the pure readings behind them."""
import json
from pathlib import Path

import boto3
import pytest

from auditbook.catalog.model import load_catalog
from auditbook.collect.clients import ClientCache
from auditbook.collect.runner import Runner
from auditbook.collect.targets import assumed_target, current_target
from auditbook.demo.estate_network import self_signed
from auditbook.evaluate.evaluator import evaluate
from auditbook.plugins import resource_types
from collectors.ec2 import _subnet, rule_text, supernets
from collectors.elbv2 import _load_balancer, forward_secret
from collectors.iam import human_principals
from tests.catalog_edits import catalog_with_parameters as catalog_with
from tests.conftest import by_check, status_of

ROOT = Path(__file__).resolve().parents[2]
TYPES = ("aws.ec2.security_group", "aws.ec2.subnet", "aws.ec2.nat_gateway", "aws.elbv2.load_balancer",
         "aws.elbv2.target_group", "aws.iam.role", "aws.iam.policy", "aws.iam.account", "aws.cloudtrail.trail",
         "aws.s3.bucket")
OTHER = "222222222222"


def scan(catalog=None, accounts=()):
    """Collect this area's types (the current account, and `accounts` through a role) and evaluate."""
    catalog = catalog or load_catalog()
    clients = ClientCache(pool=4)
    targets = [current_target(clients)] + [assumed_target(clients, a, a, "scan") for a in accounts]
    rtypes = [resource_types()[name] for name in TYPES]
    collection = Runner(workers=2, clients=clients).run(targets, ["us-east-1"], rtypes)
    assert collection.gaps == [] and all(not r.gaps for r in collection.records), collection.gaps
    return collection, evaluate(catalog, collection)


def failed(findings, check, name):
    found = by_check(findings, check, name)
    assert len(found) == 1 and found[0].status == "FAIL", [(f.status, f.message) for f in found]
    return found[0].message


def vpc_with_subnets(ec2, cidr="10.1.0.0/16"):
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.rsplit(".", 2)[0]
    subnets = {}
    for n, (name, zone) in enumerate((("public-a", "a"), ("private-a", "a"), ("private-b", "b"))):
        tier = name.split("-")[0]
        subnets[name] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.{n}.0/24", AvailabilityZone=f"us-east-1{zone}",
                                          TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                              {"Key": "Name", "Value": name}, {"Key": "Tier", "Value": tier}]}]
                                          )["Subnet"]["SubnetId"]
    return vpc, subnets


def group(ec2, vpc, name, ingress=(), egress=()):
    """A security group whose rules are exactly `ingress` and `egress` (moto's allow-all egress removed)."""
    sg = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc,
                                   TagSpecifications=[{"ResourceType": "security-group",
                                                       "Tags": [{"Key": "Name", "Value": name}]}])["GroupId"]
    ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=list(ingress))
    if egress:
        ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=list(egress))
    return sg


def tcp(port, cidr, ipv6=False, protocol="tcp", to_port=None):
    ranges = {"Ipv6Ranges": [{"CidrIpv6": cidr}]} if ipv6 else {"IpRanges": [{"CidrIp": cidr}]}
    return {"IpProtocol": protocol, "FromPort": port, "ToPort": to_port or port, **ranges}


# -- security groups ---------------------------------------------------------------------------------

def test_egress_to_the_internet_on_any_protocol_fails_not_only_all_traffic(aws):
    ec2 = aws.client("ec2")
    vpc, _ = vpc_with_subnets(ec2)
    group(ec2, vpc, "https-out", egress=[tcp(443, "0.0.0.0/0")])
    group(ec2, vpc, "dns-out-v6", egress=[tcp(53, "::/0", ipv6=True, protocol="udp")])
    group(ec2, vpc, "one-host", egress=[tcp(1024, "8.8.8.8/32", to_port=65535)])
    group(ec2, vpc, "internal", egress=[tcp(443, "10.1.0.0/16"), tcp(5432, "10.200.0.0/16")])
    group(ec2, vpc, "no-egress")
    _, findings = scan()
    assert "egress tcp 443 to 0.0.0.0/0" in failed(findings, "ec2-sg-egress-restricted", "https-out")
    assert "udp 53 to ::/0" in failed(findings, "ec2-sg-egress-restricted", "dns-out-v6")
    message = failed(findings, "ec2-sg-egress-restricted", "one-host")
    assert "tcp 1024-65535 to 8.8.8.8/32" in message and "allowed besides the VPC: 10.0.0.0/8" in message
    assert status_of(findings, "ec2-sg-egress-restricted", "internal") == "PASS"
    assert status_of(findings, "ec2-sg-egress-restricted", "no-egress") == "PASS"


def test_the_company_approves_egress_networks(aws, tmp_path):
    ec2 = aws.client("ec2")
    vpc, _ = vpc_with_subnets(ec2)
    group(ec2, vpc, "one-host", egress=[tcp(443, "8.8.8.8/32")])
    group(ec2, vpc, "peered", egress=[tcp(443, "10.200.0.0/16")])
    _, findings = scan(catalog_with(tmp_path, {"approved_egress_cidrs": ["8.8.8.0/24"]}))
    assert status_of(findings, "ec2-sg-egress-restricted", "one-host") == "PASS"
    # the VPC is always allowed, 10.200.0.0/16 no longer is
    assert "tcp 443 to 10.200.0.0/16" in failed(findings, "ec2-sg-egress-restricted", "peered")


def test_ingress_sources_outside_the_vpc_must_be_approved(aws, tmp_path):
    ec2 = aws.client("ec2")
    vpc, _ = vpc_with_subnets(ec2)
    group(ec2, vpc, "partner-db", ingress=[tcp(5432, "203.0.113.0/24")])
    group(ec2, vpc, "vpn", ingress=[tcp(22, "10.250.0.0/16")])
    group(ec2, vpc, "in-vpc", ingress=[tcp(8080, "10.1.2.0/24")])
    group(ec2, vpc, "web", ingress=[tcp(443, "0.0.0.0/0")])  # the internet: ec2-sg-no-public-ingress decides
    _, findings = scan()
    message = failed(findings, "ec2-sg-ingress-approved-networks", "partner-db")
    assert "ingress tcp 5432 from 203.0.113.0/24" in message and "10.0.0.0/8" in message
    for name in ("vpn", "in-vpc", "web"):
        assert status_of(findings, "ec2-sg-ingress-approved-networks", name) == "PASS"
    _, findings = scan(catalog_with(tmp_path, {"approved_ingress_cidrs": []}))
    assert by_check(findings, "ec2-sg-ingress-approved-networks") == []  # no list declared: not applicable


def test_supernets_and_rule_text():
    assert supernets("10.1.2.0/24")[:2] == ["0.0.0.0/0", "0.0.0.0/1"] and supernets("10.1.2.0/24")[-1] == "10.1.2.0/24"
    assert "10.0.0.0/8" in supernets("10.1.2.3/32") and len(supernets("10.1.2.3/32")) == 33
    assert supernets("::/0") == ["::/0"] and supernets("not a network") == []
    assert rule_text({"IpProtocol": "-1"}, "to", "0.0.0.0/0") == "all traffic to 0.0.0.0/0"
    assert rule_text({"IpProtocol": "6", "FromPort": 0, "ToPort": 65535}, "from", "1.2.3.4/32") == "tcp all ports from 1.2.3.4/32"
    assert rule_text({"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1}, "to", "::/0") == "icmp to ::/0"


# -- subnets and NAT gateways ------------------------------------------------------------------------

def nat_in(ec2, subnet, name):
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    return ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip, TagSpecifications=[
        {"ResourceType": "natgateway", "Tags": [{"Key": "Name", "Value": name}]}])["NatGateway"]["NatGatewayId"]


def route_default(ec2, vpc, subnet, **target):
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", **target)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return table


def test_private_subnets_use_a_nat_gateway_of_their_own_zone(aws):
    ec2 = aws.client("ec2")
    vpc, subnets = vpc_with_subnets(ec2)
    nat = nat_in(ec2, subnets["public-a"], "nat-a")
    route_default(ec2, vpc, subnets["private-a"], NatGatewayId=nat)
    route_default(ec2, vpc, subnets["private-b"], NatGatewayId=nat)
    _, findings = scan()
    assert status_of(findings, "subnet-private-nat-same-az", "private-a") == "PASS"
    message = failed(findings, "subnet-private-nat-same-az", "private-b")
    assert f"default route to {nat} (available) in us-east-1a, the subnet is in us-east-1b" in message
    assert by_check(findings, "subnet-private-nat-same-az", "public-a") == []  # public: not applicable


def test_a_default_route_to_a_deleted_nat_gateway_is_a_blackhole():
    table = {"RouteTableId": "rtb-1", "Associations": [{"SubnetId": "subnet-1"}], "Routes": [
        {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-gone", "State": "blackhole"}]}
    subnet = _subnet({"SubnetId": "subnet-1", "AvailabilityZone": "us-east-1a", "Tags": []}, {"route_tables": [table]})
    assert subnet["default_route"] is None and subnet["blackhole_default_route"] == "nat-gone"
    assert subnet["tier"] == "private" and subnet["nat_gateway"] is None


def test_any_internet_gateway_route_from_a_private_subnet_fails(aws):
    """Regression: only a 0.0.0.0/0 route to the internet gateway counted; a narrower one is as public."""
    ec2 = aws.client("ec2")
    vpc, subnets = vpc_with_subnets(ec2)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="52.0.0.0/8", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnets["private-b"])
    _, findings = scan()
    message = failed(findings, "subnet-private-egress-via-nat", "private-b")
    assert f"routes 52.0.0.0/8 to {igw} through an internet gateway" in message
    assert status_of(findings, "subnet-private-egress-via-nat", "private-a") == "PASS"


def test_nat_gateways_need_an_active_flow_log_recording_accepted_traffic(aws):
    ec2 = aws.client("ec2")
    vpc, subnets = vpc_with_subnets(ec2)
    other_vpc, other_subnets = vpc_with_subnets(ec2, "10.2.0.0/16")
    nat_in(ec2, subnets["public-a"], "logged-nat")
    nat_in(ec2, other_subnets["public-a"], "rejects-only-nat")
    nat_in(ec2, other_subnets["private-a"], "unlogged-nat")
    aws.client("s3").create_bucket(Bucket="flow-logs")
    logs = dict(TrafficType="ALL", LogDestinationType="s3", LogDestination="arn:aws:s3:::flow-logs")
    for made in (ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", **logs),
                 ec2.create_flow_logs(ResourceIds=[other_subnets["public-a"]], ResourceType="Subnet",
                                      **{**logs, "TrafficType": "REJECT"})):
        assert not made.get("Unsuccessful"), made
    _, findings = scan()
    assert status_of(findings, "ec2-nat-gateway-flow-logs", "logged-nat") == "PASS"
    assert "REJECT ACTIVE" in failed(findings, "ec2-nat-gateway-flow-logs", "rejects-only-nat")
    message = failed(findings, "ec2-nat-gateway-flow-logs", "unlogged-nat")
    assert f"VPC {other_vpc}" in message and "eni-" in message


# -- load balancers ----------------------------------------------------------------------------------

def load_balancer(aws, name, subnets, policy=None, http_action=None, scheme="internal"):
    elb = aws.client("elbv2")
    lb = elb.create_load_balancer(Name=name, Subnets=subnets, Scheme=scheme, Type="application")["LoadBalancers"][0]
    vpc = lb["VpcId"]
    tg = elb.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    forward = [{"Type": "forward", "TargetGroupArn": tg}]
    if policy:
        cert, key = self_signed(f"{name}.example.test", 90)
        arn = aws.client("acm").import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=443, SslPolicy=policy,
                            Certificates=[{"CertificateArn": arn}], DefaultActions=forward)
    if http_action:
        action = forward if http_action == "forward" else [{"Type": "redirect", "RedirectConfig": {
            "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}]
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=action)


def test_listener_policies_must_be_forward_secret_and_tls12(aws):
    ec2 = aws.client("ec2")
    _, subnets = vpc_with_subnets(ec2)
    two = [subnets["public-a"], subnets["private-b"]]
    load_balancer(aws, "seed-policy", two, "ELBSecurityPolicy-TLS-1-2-2017-01")
    load_balancer(aws, "old-policy", two, "ELBSecurityPolicy-2016-08")
    load_balancer(aws, "fs-policy", two, "ELBSecurityPolicy-TLS13-1-2-Res-2021-06")
    _, findings = scan()
    # the seed's policy: TLS 1.2 only, but RSA key exchange
    assert status_of(findings, "elb-listener-tls12", "seed-policy") == "PASS"
    message = failed(findings, "elb-listener-forward-secrecy", "seed-policy")
    assert "port 443: policy ELBSecurityPolicy-TLS-1-2-2017-01 allows non-forward-secret AES128-GCM-SHA256" in message
    assert "ECDHE" not in message
    message = failed(findings, "elb-listener-tls12", "old-policy")
    assert "policy ELBSecurityPolicy-2016-08 allows TLSv1, TLSv1.1" in message
    assert "AES128-SHA" in failed(findings, "elb-listener-forward-secrecy", "old-policy")
    assert status_of(findings, "elb-listener-forward-secrecy", "fs-policy") == "PASS"
    assert status_of(findings, "elb-listener-tls12", "fs-policy") == "PASS"


def test_an_unknown_policy_is_not_taken_for_forward_secret():
    lb = {"listeners": [{"Protocol": "HTTPS", "Port": 443, "SslPolicy": "Custom"}]}
    out = _load_balancer(lb, {"ssl_policies": []})
    listener = out["listeners"][0]
    assert listener["forward_secret_only"] is None and listener["tls12_plus"] is None
    assert out["non_fs_listeners"] == [{"port": 443, "policy": "Custom", "allows": "unknown policy"}]
    assert forward_secret("TLS_AES_128_GCM_SHA256") and forward_secret("ECDHE-RSA-AES128-GCM-SHA256")
    assert not forward_secret("AES256-GCM-SHA384") and not forward_secret("DES-CBC3-SHA")


def test_http_listeners_must_redirect_to_https(aws):
    ec2 = aws.client("ec2")
    _, subnets = vpc_with_subnets(ec2)
    two = [subnets["public-a"], subnets["private-b"]]
    load_balancer(aws, "plain-http", two, http_action="forward")
    load_balancer(aws, "redirects", two, http_action="redirect")
    load_balancer(aws, "https-only", two, policy="ELBSecurityPolicy-TLS13-1-2-Res-2021-06")
    _, findings = scan()
    assert failed(findings, "elb-http-listener-redirects-https", "plain-http") == \
        "HTTP listener on port 80 answers with forward instead of a redirect to HTTPS"
    assert status_of(findings, "elb-http-listener-redirects-https", "redirects") == "PASS"
    assert by_check(findings, "elb-http-listener-redirects-https", "https-only") == []


def test_https_to_targets_only_when_the_company_requires_it(aws, tmp_path):
    ec2 = aws.client("ec2")
    vpc, _ = vpc_with_subnets(ec2)
    elb = aws.client("elbv2")
    elb.create_target_group(Name="plain", Protocol="HTTP", Port=80, VpcId=vpc)
    elb.create_target_group(Name="tls", Protocol="HTTPS", Port=443, VpcId=vpc)
    elb.create_target_group(Name="fn", TargetType="lambda")
    _, findings = scan()
    assert by_check(findings, "elb-target-group-https") == []  # default: not required
    _, findings = scan(catalog_with(tmp_path, {"require_https_to_targets": True}))
    assert failed(findings, "elb-target-group-https", "plain") == \
        "target group sends traffic to its targets over HTTP on port 80 (HTTPS to targets required)"
    assert status_of(findings, "elb-target-group-https", "tls") == "PASS"
    assert by_check(findings, "elb-target-group-https", "fn") == []


# -- IAM roles ---------------------------------------------------------------------------------------

def trust(principal, condition=None, effect="Allow"):
    statement = {"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
EVERYTHING = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def role(iam, name, document, admin=None, **kwargs):
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document), **kwargs)
    if admin == "inline":
        iam.put_role_policy(RoleName=name, PolicyName="everything", PolicyDocument=EVERYTHING)
    elif admin:
        iam.attach_role_policy(RoleName=name, PolicyArn=admin)


def test_cross_account_roles_keep_sessions_short(aws, tmp_path):
    iam = aws.client("iam")
    vendor = {"AWS": "arn:aws:iam::999999999999:root"}
    guarded = {"StringEquals": {"sts:ExternalId": "x-1"}}
    role(iam, "long-vendor", trust(vendor, guarded), MaxSessionDuration=43200)
    role(iam, "short-vendor", trust(vendor, guarded))
    role(iam, "own-long", trust({"AWS": "arn:aws:iam::123456789012:root"}, MFA), MaxSessionDuration=43200)
    _, findings = scan()
    assert failed(findings, "iam-role-cross-account-session-length", "long-vendor") == \
        "maximum session 43200 seconds for principals of 999999999999 (allowed: 3600)"
    assert status_of(findings, "iam-role-cross-account-session-length", "short-vendor") == "PASS"
    assert by_check(findings, "iam-role-cross-account-session-length", "own-long") == []  # not cross-account
    _, findings = scan(catalog_with(tmp_path, {"role_max_session_seconds": 43200}))
    assert status_of(findings, "iam-role-cross-account-session-length", "long-vendor") == "PASS"


def test_admin_roles_people_can_assume_require_mfa(aws):
    iam = aws.client("iam")
    own = {"AWS": "arn:aws:iam::123456789012:root"}
    managed = iam.create_policy(PolicyName="all-of-it", PolicyDocument=EVERYTHING)["Policy"]["Arn"]
    role(iam, "admin-no-mfa", trust(own), admin="inline")
    role(iam, "admin-managed-no-mfa", trust({"AWS": "arn:aws:iam::123456789012:user/alice"}), admin=managed)
    role(iam, "admin-if-exists", trust(own, {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}), admin="inline")
    role(iam, "admin-mfa", trust(own, MFA), admin="inline")
    role(iam, "admin-service", trust({"Service": "ec2.amazonaws.com"}), admin="inline")
    role(iam, "reader-no-mfa", trust(own))
    _, findings = scan()
    message = failed(findings, "iam-role-admin-requires-mfa", "admin-no-mfa")
    assert "assumable without an MFA condition by arn:aws:iam::123456789012:root" in message
    assert "inline policies everything" in message
    assert managed in failed(findings, "iam-role-admin-requires-mfa", "admin-managed-no-mfa")
    assert "by arn:aws:iam::123456789012:root" in failed(findings, "iam-role-admin-requires-mfa", "admin-if-exists")
    assert status_of(findings, "iam-role-admin-requires-mfa", "admin-mfa") == "PASS"
    for name in ("admin-service", "reader-no-mfa"):  # no person can assume it / not an administrator
        assert by_check(findings, "iam-role-admin-requires-mfa", name) == []


def test_who_counts_as_a_person_in_a_trust_policy():
    deny_without_mfa = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
                        "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}
    allow = {"Effect": "Allow", "Principal": {"AWS": ["123456789012", "arn:aws:iam::1:role/ci"]}, "Action": "sts:AssumeRole"}
    assert human_principals({"Statement": [allow]}) == (["123456789012"], ["123456789012"])
    assert human_principals({"Statement": [allow, deny_without_mfa]}) == (["123456789012"], [])
    age = {**allow, "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}}
    assert human_principals({"Statement": [age]}) == (["123456789012"], [])
    vendor = {**allow, "Condition": {"StringEquals": {"sts:ExternalId": "abc"}}}
    assert human_principals({"Statement": [vendor]}) == ([], [])  # a third party's software
    saml = {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::1:saml-provider/idp"},
            "Action": "sts:AssumeRoleWithSAML"}
    assert human_principals({"Statement": [saml]}) == ([], [])
    assert human_principals('{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:*"}}') == (["*"], ["*"])


def test_external_trust_names_the_accounts(aws):
    iam = aws.client("iam")
    role(iam, "vendor-open", trust({"AWS": ["arn:aws:iam::999999999999:root", "arn:aws:iam::888888888888:root"]}))
    _, findings = scan()
    message = failed(findings, "iam-role-external-trust", "vendor-open")
    assert message.startswith("trusts 888888888888, 999999999999 outside the scanned estate") or \
        message.startswith("trusts 999999999999, 888888888888 outside the scanned estate")


# -- logging architecture ----------------------------------------------------------------------------

def other_account_session(aws):
    creds = aws.client("sts").assume_role(RoleArn=f"arn:aws:iam::{OTHER}:role/scan", RoleSessionName="test")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name="us-east-1")


@pytest.fixture
def two_accounts(aws):
    """The current account (123456789012) and OTHER, the log archive: OTHER's bucket receives the
    current account's "archived" trail; each account also has a trail into its own bucket."""
    archive = other_account_session(aws)
    archive.client("s3").create_bucket(Bucket="org-archive")
    archive.client("cloudtrail").create_trail(Name="archive-own", S3BucketName="org-archive")
    aws.client("s3").create_bucket(Bucket="local-logs")
    aws.client("cloudtrail").create_trail(Name="archived", S3BucketName="org-archive")
    aws.client("cloudtrail").create_trail(Name="local", S3BucketName="local-logs")
    return aws


def test_trails_deliver_outside_the_account_they_record(two_accounts, tmp_path):
    _, findings = scan(accounts=(OTHER,))
    assert status_of(findings, "cloudtrail-logs-in-log-archive-account", "archived") == "PASS"
    assert failed(findings, "cloudtrail-logs-in-log-archive-account", "local") == \
        "delivers to local-logs, a bucket of the account it records (123456789012)"
    # the archive's own trail: its bucket receives other accounts' trails, so it is the log archive
    assert status_of(findings, "cloudtrail-logs-in-log-archive-account", "archive-own") == "PASS"
    _, findings = scan(catalog_with(tmp_path, {"log_archive_account": OTHER}), accounts=(OTHER,))
    assert status_of(findings, "cloudtrail-logs-in-log-archive-account", "archive-own") == "PASS"
    assert status_of(findings, "cloudtrail-logs-in-log-archive-account", "archived") == "PASS"
    assert "local-logs" in failed(findings, "cloudtrail-logs-in-log-archive-account", "local")


def test_a_trail_into_a_bucket_no_scanned_account_owns_never_passes(two_accounts, tmp_path):
    """Positive evidence only: a bucket outside every scanned account (an outsider's, or the archive's
    when the archive account is not scanned) is not evidence of a log archive."""
    aws = two_accounts
    other = other_account_session(aws)
    other.client("s3").create_bucket(Bucket="unscanned-archive")
    aws.client("cloudtrail").create_trail(Name="elsewhere", S3BucketName="unscanned-archive")
    _, findings = scan()  # OTHER is not scanned: its buckets are unknown
    assert "unscanned-archive, not found among the buckets" in \
        failed(findings, "cloudtrail-logs-in-log-archive-account", "elsewhere")
    assert "org-archive, not found among the buckets" in \
        failed(findings, "cloudtrail-logs-in-log-archive-account", "archived")
    _, findings = scan(catalog_with(tmp_path, {"log_archive_account": OTHER}))
    assert "unscanned-archive, not found" in failed(findings, "cloudtrail-logs-in-log-archive-account", "elsewhere")


def test_a_log_archive_named_by_the_company_is_the_only_one_keeping_its_own_logs(two_accounts, tmp_path):
    # naming the current account instead: OTHER's trail into its own bucket is no longer accepted
    _, findings = scan(catalog_with(tmp_path, {"log_archive_account": "123456789012"}), accounts=(OTHER,))
    assert "org-archive, a bucket of the account it records (222222222222)" in \
        failed(findings, "cloudtrail-logs-in-log-archive-account", "archive-own")
    assert "org-archive, not found among the buckets of the log-archive account" in \
        failed(findings, "cloudtrail-logs-in-log-archive-account", "archived")
    assert status_of(findings, "cloudtrail-logs-in-log-archive-account", "local") == "PASS"


# -- what moto does not page: botocore's Stubber ----------------------------------------------------

def _stubbed_run(client, service, rtype):
    from auditbook.collect.targets import Target
    runner = Runner(workers=1)
    runner.clients._clients[(service, "us-east-1")] = client
    return runner.run([Target("111111111111", "a", object())], ["us-east-1"], [rtype])


def test_security_groups_are_judged_against_their_vpc_read_in_pages():
    """moto answers describe_security_groups / describe_vpcs in one page: every page of both is read,
    and a rule to the group's own (secondary) VPC block is not egress outside it."""
    from botocore.stub import Stubber
    ec2 = boto3.client("ec2", region_name="us-east-1")
    stub = Stubber(ec2)
    out = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "172.16.5.0/24"}]}
    stub.add_response("describe_security_groups", {"SecurityGroups": [
        {"GroupId": "sg-1", "GroupName": "g", "VpcId": "vpc-2", "IpPermissions": [], "IpPermissionsEgress": [out]}]}, {})
    vpc = lambda i, blocks: {"VpcId": i, "CidrBlock": blocks[0], "CidrBlockAssociationSet": [  # noqa: E731
        {"CidrBlock": b, "CidrBlockState": {"State": "associated"}} for b in blocks]}
    stub.add_response("describe_vpcs", {"Vpcs": [vpc("vpc-1", ["10.9.0.0/16"])], "NextToken": "t1"}, {})
    stub.add_response("describe_vpcs", {"Vpcs": [vpc("vpc-2", ["10.8.0.0/16", "172.16.0.0/16"])]}, {"NextToken": "t1"})
    with stub:
        col = _stubbed_run(ec2, "ec2", resource_types()["aws.ec2.security_group"])
    stub.assert_no_pending_responses()
    assert [r.data["egress_outside_vpc"] for r in col.records] == [[]]


def test_forward_secrecy_reads_every_page_of_ssl_policies():
    """moto ignores DescribeSSLPolicies paging (AWS pages it with Marker): a policy on the second page
    still decides the listener."""
    from botocore.stub import Stubber

    from auditbook.collect.spec import ResourceType
    spec = resource_types()["aws.elbv2.load_balancer"]
    bare = ResourceType(name=spec.name, service=spec.service, list=spec.list, id=spec.id, arn=spec.arn,
                        shared=spec.shared, details={"listeners": spec.details["listeners"]}, normalise=spec.normalise)
    elb = boto3.client("elbv2", region_name="us-east-1")
    stub = Stubber(elb)
    arn = "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/app/lb/1"
    stub.add_response("describe_load_balancers", {"LoadBalancers": [{"LoadBalancerName": "lb", "LoadBalancerArn": arn,
                                                                      "Type": "application"}]}, {})
    policy = lambda name, ciphers: {"Name": name, "SslProtocols": ["TLSv1.2"],  # noqa: E731
                                    "Ciphers": [{"Name": c, "Priority": n} for n, c in enumerate(ciphers, 1)]}
    stub.add_response("describe_ssl_policies", {"SslPolicies": [policy("A", ["ECDHE-RSA-AES128-GCM-SHA256"])],
                                                "NextMarker": "m1"}, {})
    stub.add_response("describe_ssl_policies", {"SslPolicies": [policy("B", ["ECDHE-RSA-AES128-GCM-SHA256",
                                                                             "AES128-GCM-SHA256"])]}, {"Marker": "m1"})
    stub.add_response("describe_listeners", {"Listeners": [{"ListenerArn": "l", "Protocol": "HTTPS", "Port": 443,
                                                            "SslPolicy": "B"}]}, {"LoadBalancerArn": arn})
    with stub:
        col = _stubbed_run(elb, "elbv2", bare)
    stub.assert_no_pending_responses()
    assert col.records[0].data["non_fs_listeners"] == [{"port": 443, "policy": "B", "allows": "AES128-GCM-SHA256"}]


def test_role_permissions_are_read_from_every_page_of_the_authorization_details():
    """moto answers GetAccountAuthorizationDetails in one page; AWS pages it (IsTruncated / Marker)."""
    from botocore.stub import Stubber
    iam = boto3.client("iam", region_name="us-east-1")
    stub = Stubber(iam)
    def listed(name):  # noqa: E306
        return {"RoleName": name, "RoleId": "AROA" + "0" * 16, "Path": "/", "CreateDate": "2026-01-01T00:00:00Z",
                "Arn": f"arn:aws:iam::111111111111:role/{name}", "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": json.dumps(trust({"AWS": "arn:aws:iam::111111111111:root"}))}
    stub.add_response("list_roles", {"Roles": [listed("first"), listed("second")]}, {})
    detail = lambda name, extra: {"RoleName": name, "Arn": f"arn:aws:iam::111111111111:role/{name}", **extra}  # noqa: E731
    stub.add_response("get_account_authorization_details", {"RoleDetailList": [detail("first", {})],
                                                            "IsTruncated": True, "Marker": "m1"}, {"Filter": ["Role"]})
    stub.add_response("get_account_authorization_details", {"RoleDetailList": [detail("second", {
        "AttachedManagedPolicies": [{"PolicyName": "AdministratorAccess",
                                     "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}]})],
        "IsTruncated": False}, {"Filter": ["Role"], "Marker": "m1"})
    with stub:
        col = _stubbed_run(iam, "iam", resource_types()["aws.iam.role"])
    stub.assert_no_pending_responses()
    roles = {r.id: r.data for r in col.records}
    assert roles["second"]["aws_admin_attached"] and roles["second"]["permissions_read"]
    assert roles["first"]["permissions_read"] and not roles["first"]["aws_admin_attached"]
    assert roles["second"]["human_principals_without_mfa"] == ["arn:aws:iam::111111111111:root"]
