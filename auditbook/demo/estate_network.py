"""The network, load balancer, certificate and database builders of a simulated account (demo/estate.py's
Account takes them from NetworkBuilder), and the small helpers they share with it."""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def tag_spec(kind, name):
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def self_signed(common_name: str, days_valid: int):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days_valid))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()))


def close_admin_ports(ec2, acl_id: str) -> None:
    for number, port in ((10, 22), (11, 3389)):
        ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=number, Protocol="6", RuleAction="deny",
                                     Egress=False, CidrBlock="0.0.0.0/0", PortRange={"From": port, "To": port})


class NetworkBuilder:
    """VPCs, subnets, security groups, ACLs, load balancers, certificates and databases (a mixin of
    estate.Account: `self.c(service, region)` gives the account's client)."""

    def name_default_acl(self, vpc, name, *, deny_admin_ports):
        ec2 = self.c("ec2")
        acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                 {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]["NetworkAclId"]
        ec2.create_tags(Resources=[acl], Tags=[{"Key": "Name", "Value": name}])
        if deny_admin_ports:
            close_admin_ports(ec2, acl)

    def network(self, prefix, cidr, *, flow_logs, private_public_ip, private_via_igw, sg_public_port,
                lock_default_sg=True):
        ec2 = self.c("ec2")
        vpc = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=tag_spec("vpc", f"{prefix}-vpc"))["Vpc"]["VpcId"]
        base = cidr.rsplit(".", 2)[0]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        public = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.0.0/24", AvailabilityZone="us-east-1a",
                                   TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                       {"Key": "Name", "Value": f"{prefix}-public-a"},
                                       {"Key": "Tier", "Value": "public"}]}])["Subnet"]["SubnetId"]
        private = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.1.0/24", AvailabilityZone="us-east-1a",
                                    TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                        {"Key": "Name", "Value": f"{prefix}-private-a"},
                                        {"Key": "Tier", "Value": "private"}]}])["Subnet"]["SubnetId"]
        public_b = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.2.0/24", AvailabilityZone="us-east-1b",
                                     TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                         {"Key": "Name", "Value": f"{prefix}-public-b"},
                                         {"Key": "Tier", "Value": "public"}]}])["Subnet"]["SubnetId"]
        for subnet in (public, public_b):
            ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
        if private_public_ip:
            ec2.modify_subnet_attribute(SubnetId=private, MapPublicIpOnLaunch={"Value": True})
        public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public)
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public_b)
        private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        if private_via_igw:
            ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        else:
            eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
            nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip, TagSpecifications=tag_spec(
                "natgateway", f"{prefix}-nat-a"))["NatGateway"]["NatGatewayId"]
            ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        ec2.associate_route_table(RouteTableId=private_rt, SubnetId=private)
        if flow_logs:
            destination = self.bucket(f"{prefix}-flow-logs")
            made = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                                        LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{destination}")
            if made.get("Unsuccessful"):
                raise RuntimeError(f"flow log for {vpc} not created: {made['Unsuccessful']}")
        # every VPC has a default security group that allows all egress: restrict it
        default_sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                           {"Name": "group-name", "Values": ["default"]}])
        for sg in default_sg["SecurityGroups"] if lock_default_sg else []:
            if sg["IpPermissionsEgress"]:
                ec2.revoke_security_group_egress(GroupId=sg["GroupId"], IpPermissions=sg["IpPermissionsEgress"])
        name = "web-https" if sg_public_port == 443 else "ssh-anywhere"
        sg = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc,
                                       TagSpecifications=tag_spec("security-group", name))["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": sg_public_port, "ToPort": sg_public_port,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        if sg_public_port == 443:  # compliant twin: egress only to the VPC
            ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[{"IpProtocol": "-1",
                                                                          "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
            ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": cidr}]}])
        return vpc, [public, public_b], private, sg

    def load_balancer(self, name, subnets, sg, cert_arn, ssl_policy, waf):
        elb = self.c("elbv2")
        lb = elb.create_load_balancer(Name=name, Subnets=subnets, SecurityGroups=[sg], Scheme="internet-facing",
                                      Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
        tg = elb.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80,
                                     VpcId=self.c("ec2").describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
                                     )["TargetGroups"][0]["TargetGroupArn"]
        elb.create_listener(LoadBalancerArn=lb, Protocol="HTTPS", Port=443, SslPolicy=ssl_policy,
                            Certificates=[{"CertificateArn": cert_arn}],
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        if waf:
            wafv2 = self.c("wafv2")
            acl = wafv2.create_web_acl(
                Name=f"{name}-acl", Scope="REGIONAL", DefaultAction={"Block": {}},
                VisibilityConfig={"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                  "MetricName": f"{name}-acl"},
                Rules=[{"Name": "common", "Priority": 1, "OverrideAction": {"None": {}},
                        "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS",
                                                                   "Name": "AWSManagedRulesCommonRuleSet"}},
                        "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                             "MetricName": "common"}}])["Summary"]["ARN"]
            wafv2.associate_web_acl(WebACLArn=acl, ResourceArn=lb)
        return lb

    def certificate(self, domain, days_valid):
        cert, key = self_signed(domain, days_valid)
        return self.c("acm").import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]

    def database(self, name, *, kms_key, public, backup_days, deletion_protection, subnets, security_group,
                 environment, multi_az=False, auto_minor=True, max_storage=None, snapshot_public=False):
        rds = self.c("rds")
        group = f"{name}-subnets"
        rds.create_db_subnet_group(DBSubnetGroupName=group, DBSubnetGroupDescription=group, SubnetIds=subnets)
        kwargs = dict(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
                      MasterUsername="app", MasterUserPassword="demo-password-not-secret", AllocatedStorage=20,
                      PubliclyAccessible=public, BackupRetentionPeriod=backup_days,
                      DeletionProtection=deletion_protection, DBSubnetGroupName=group,
                      VpcSecurityGroupIds=[security_group], MultiAZ=multi_az, AutoMinorVersionUpgrade=auto_minor,
                      Tags=[{"Key": "environment", "Value": environment}])
        if kms_key:
            kwargs.update(StorageEncrypted=True, KmsKeyId=kms_key)
        if max_storage:
            kwargs["MaxAllocatedStorage"] = max_storage
        rds.create_db_instance(**kwargs)
        rds.create_db_snapshot(DBInstanceIdentifier=name, DBSnapshotIdentifier=f"{name}-snap")
        if snapshot_public:
            rds.modify_db_snapshot_attribute(DBSnapshotIdentifier=f"{name}-snap", AttributeName="restore",
                                             ValuesToAdd=["all"])
