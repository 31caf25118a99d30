"""Issue 15 coverage, access: the demo estate's planted violations and compliant twins for this area —
security-group egress and ingress against the approved networks, NAT gateways (zone, flow logs), listener
ciphers and HTTP redirects, cross-account session length, admin roles without MFA, and where trails
deliver their logs.

PLANTED / COMPLIANT: (check id, account name, resource name as in the finding) — the scan must FAIL
each planted one and PASS each twin (tests/unit/test_demo_estate.py). plant(accounts) builds them:
accounts is {account name: demo.estate.Account} (names: master, audit-logs, prod-us-east, staging).
This module must not import auditbook.demo.estate at module level (estate imports it).

elb-target-group-https does not apply in the demo (require_https_to_targets defaults to false);
tests/unit/test_checks_access.py judges it with the parameter set to true."""
from __future__ import annotations

import json

from auditbook.demo.estate_network import self_signed, tag_spec

PLANTED: list[tuple[str, str, str]] = [
    ("ec2-sg-egress-restricted", "staging", "staging-egress-https-world"),  # tcp 443 to 0.0.0.0/0, not -1
    ("ec2-sg-ingress-approved-networks", "staging", "staging-partner-db"),
    ("subnet-private-nat-same-az", "staging", "staging-private-b"),
    ("ec2-nat-gateway-flow-logs", "staging", "staging-nat-a"),
    ("elb-listener-forward-secrecy", "staging", "staging-api-alb"),  # the seed's TLS-1-2-2017-01
    ("elb-listener-forward-secrecy", "staging", "staging-alb"),
    ("elb-http-listener-redirects-https", "staging", "staging-api-alb"),
    ("iam-role-cross-account-session-length", "staging", "staging-vendor-long-session"),
    ("iam-role-admin-requires-mfa", "staging", "staging-ops-admin"),
    ("cloudtrail-logs-in-log-archive-account", "staging", "staging-trail"),
]
COMPLIANT: list[tuple[str, str, str]] = [
    ("ec2-sg-ingress-approved-networks", "prod-us-east", "prod-internal-api"),
    ("ec2-sg-egress-restricted", "prod-us-east", "prod-internal-api"),
    ("subnet-private-nat-same-az", "prod-us-east", "prod-private-a"),
    ("ec2-nat-gateway-flow-logs", "prod-us-east", "prod-nat-a"),
    ("elb-listener-forward-secrecy", "prod-us-east", "prod-alb"),
    ("elb-listener-tls12", "staging", "staging-api-alb"),  # TLS 1.2 only: it is the ciphers that fail
    ("elb-http-listener-redirects-https", "prod-us-east", "prod-alb"),
    ("iam-role-cross-account-session-length", "prod-us-east", "vendor-audit"),
    ("iam-role-admin-requires-mfa", "prod-us-east", "prod-ops-admin"),
    ("cloudtrail-logs-in-log-archive-account", "prod-us-east", "prod-us-east-trail"),
    ("cloudtrail-logs-in-log-archive-account", "audit-logs", "audit-logs-trail"),  # the archive keeps its own
]

MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _trust(principal: str, condition: dict | None = None) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _named(ec2, kind: str, name: str) -> dict:
    describe = {"vpc": ("describe_vpcs", "Vpcs"), "subnet": ("describe_subnets", "Subnets")}[kind]
    return getattr(ec2, describe[0])(Filters=[{"Name": "tag:Name", "Values": [name]}])[describe[1]][0]


def _group(ec2, vpc: str, name: str, ingress=(), egress=()) -> str:
    """A security group with exactly these rules (the allow-all egress AWS adds is removed)."""
    sg = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc,
                                   TagSpecifications=tag_spec("security-group", name))["GroupId"]
    ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=list(ingress))
    if egress:
        ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=list(egress))
    return sg


def _tcp(port: int, cidr: str) -> dict:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}


def _network(staging, prod) -> None:
    """Security groups against the approved networks; staging's NAT gateway in zone a serving a private
    subnet of zone b, in a VPC without flow logs (prod's NAT, built by estate_network, is the twin)."""
    ec2 = staging.c("ec2")
    vpc = _named(ec2, "vpc", "staging-vpc")["VpcId"]
    _group(ec2, vpc, "staging-egress-https-world", egress=[_tcp(443, "0.0.0.0/0")])
    _group(ec2, vpc, "staging-partner-db", ingress=[_tcp(5432, "203.0.113.0/24")])
    prod_ec2 = prod.c("ec2")
    prod_vpc = _named(prod_ec2, "vpc", "prod-vpc")["VpcId"]
    _group(prod_ec2, prod_vpc, "prod-internal-api", ingress=[_tcp(8443, "10.200.0.0/16")],
           egress=[_tcp(443, "10.0.0.0/8")])
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=_named(ec2, "subnet", "staging-public-a")["SubnetId"], AllocationId=eip,
                                 TagSpecifications=tag_spec("natgateway", "staging-nat-a"))["NatGateway"]["NatGatewayId"]
    private_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.3.0/24", AvailabilityZone="us-east-1b",
                                  TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                      {"Key": "Name", "Value": "staging-private-b"},
                                      {"Key": "Tier", "Value": "private"}]}])["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=table, SubnetId=private_b)


def _load_balancers(staging, prod) -> None:
    """staging-api-alb: internal, the seed's TLS 1.2 policy with RSA key exchange, and plain HTTP that
    forwards; prod-alb gets an HTTP listener that redirects to HTTPS."""
    ec2, elb = staging.c("ec2"), staging.c("elbv2")
    subnets = [_named(ec2, "subnet", name)["SubnetId"] for name in ("staging-public-a", "staging-public-b")]
    lb = elb.create_load_balancer(Name="staging-api-alb", Subnets=subnets, Scheme="internal",
                                  Type="application")["LoadBalancers"][0]
    tg = elb.create_target_group(Name="staging-api-tg", Protocol="HTTP", Port=80,
                                 VpcId=lb["VpcId"])["TargetGroups"][0]["TargetGroupArn"]
    forward = [{"Type": "forward", "TargetGroupArn": tg}]
    cert, key = self_signed("api.staging.example.test", 365)
    cert_arn = staging.c("acm").import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=443,
                        SslPolicy="ELBSecurityPolicy-TLS-1-2-2017-01", Certificates=[{"CertificateArn": cert_arn}],
                        DefaultActions=forward)
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=forward)
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[
        {"Key": "access_logs.s3.enabled", "Value": "true"}, {"Key": "access_logs.s3.bucket", "Value": "staging-trail-logs"}])
    prod_elb = prod.c("elbv2")
    prod_lb = prod_elb.describe_load_balancers(Names=["prod-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    prod_elb.create_listener(LoadBalancerArn=prod_lb, Protocol="HTTP", Port=80, DefaultActions=[{
        "Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}])


def _roles(staging, prod) -> None:
    """staging: an admin role its users may assume without MFA, a vendor role with 12-hour sessions;
    prod: an admin role whose trust requires MFA."""
    iam = staging.c("iam")
    iam.create_role(RoleName="staging-ops-admin", AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{staging.id}:root"))
    iam.attach_role_policy(RoleName="staging-ops-admin",
                           PolicyArn=f"arn:aws:iam::{staging.id}:policy/staging-admin-everything")
    iam.create_role(RoleName="staging-vendor-long-session", MaxSessionDuration=43200, AssumeRolePolicyDocument=_trust(
        "arn:aws:iam::999999999999:root", {"StringEquals": {"sts:ExternalId": "vendor-support-2026"}}))
    prod_iam = prod.c("iam")
    prod_iam.create_role(RoleName="prod-ops-admin", AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{prod.id}:root", MFA))
    prod_iam.put_role_policy(RoleName="prod-ops-admin", PolicyName="break-glass", PolicyDocument=json.dumps(EVERYTHING))


def plant(accounts: dict) -> None:
    """Build this area's resources in the simulated organisation (the trails are demo.estate's own:
    staging's delivers to its own bucket, the others to the audit-logs archive)."""
    staging, prod = accounts["staging"], accounts["prod-us-east"]
    _network(staging, prod)
    _load_balancers(staging, prod)
    _roles(staging, prod)
