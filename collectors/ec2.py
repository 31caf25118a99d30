"""EC2: security groups, network ACLs, VPCs, subnets, instances, EBS volumes / snapshots / defaults, AMIs."""
from auditbook.collect.spec import Call, ResourceType

WORLD = ("0.0.0.0/0", "::/0")


def _open_rules(permissions):
    """Each (protocol, port range, source) of a rule list that is open to the whole internet."""
    out = []
    for perm in permissions or []:
        sources = [r.get("CidrIp") for r in perm.get("IpRanges", [])]
        sources += [r.get("CidrIpv6") for r in perm.get("Ipv6Ranges", [])]
        for cidr in sources:
            if cidr in WORLD:
                out.append({"protocol": str(perm.get("IpProtocol")), "from_port": perm.get("FromPort"),
                            "to_port": perm.get("ToPort"), "cidr": cidr})
    return out


def _security_group(sg, _shared):
    sg["public_ingress"] = _open_rules(sg.get("IpPermissions"))
    sg["public_egress"] = _open_rules(sg.get("IpPermissionsEgress"))
    return sg


def _vpc(vpc, shared):
    logs = [f for f in shared.get("flow_logs") or [] if f.get("ResourceId") == vpc["VpcId"]]
    vpc["flow_logs"] = logs
    vpc["flow_logs_active"] = any(f.get("FlowLogStatus") == "ACTIVE" for f in logs)
    return vpc


TIER_TAGS = ("auditbook:tier", "Tier", "tier", "Network", "network")


def _route_kind(route):
    if (route.get("GatewayId") or "").startswith("igw-"):
        return "igw", route["GatewayId"]
    for key, kind in (("NatGatewayId", "nat"), ("TransitGatewayId", "tgw"),
                      ("EgressOnlyInternetGatewayId", "eigw")):
        if route.get(key):
            return kind, route[key]
    return "other", route.get("GatewayId") or route.get("NetworkInterfaceId")


def _default_route(table):
    """The route for all internet addresses (IPv4 or IPv6); an internet gateway wins if any."""
    routes = [_route_kind(r) for r in (table or {}).get("Routes", [])
              if r.get("State") != "blackhole"
              and (r.get("DestinationCidrBlock") == "0.0.0.0/0" or r.get("DestinationIpv6CidrBlock") == "::/0")]
    if not routes:
        return None
    kind, target = next((r for r in routes if r[0] == "igw"), routes[0])
    return {"type": kind, "target": target}


def _subnet(subnet, shared):
    tables = shared.get("route_tables") or []
    explicit = next((t for t in tables for a in t.get("Associations", []) if a.get("SubnetId") == subnet["SubnetId"]), None)
    main = next((t for t in tables if t.get("VpcId") == subnet.get("VpcId")
                 and any(a.get("Main") for a in t.get("Associations", []))), None)
    table = explicit or main
    subnet["route_table_id"] = (table or {}).get("RouteTableId")
    subnet["default_route"] = _default_route(table)
    tags = {t["Key"]: t.get("Value", "") for t in subnet.get("Tags", [])}
    declared = next((tags[k].strip().lower() for k in TIER_TAGS if k in tags), None)
    if declared in ("private", "public"):
        subnet["tier"], subnet["tier_source"] = declared, "tag"
    else:
        routed = (subnet["default_route"] or {}).get("type") == "igw"
        subnet["tier"], subnet["tier_source"] = ("public" if routed else "private"), "routes"
    return subnet


ADMIN_PORTS = (22, 3389)


def _covers(entry, port):
    if str(entry.get("Protocol")) == "-1":
        return True
    if str(entry.get("Protocol")) not in ("6", "17"):
        return False
    rng = entry.get("PortRange") or {}
    return rng.get("From", 0) <= port <= rng.get("To", 65535)


def _network_acl(acl, _shared):
    """open_admin_ports: 22 / 3389 reachable from the internet, honouring rule order (lowest first)."""
    inbound = sorted((e for e in acl.get("Entries") or [] if not e.get("Egress")), key=lambda e: e.get("RuleNumber", 0))
    acl["open_admin_ports"] = []
    for port in ADMIN_PORTS:
        for entry in inbound:
            if (entry.get("CidrBlock") in WORLD or entry.get("Ipv6CidrBlock") in WORLD) and _covers(entry, port):
                if entry.get("RuleAction") == "allow":
                    acl["open_admin_ports"].append(port)
                break  # the first matching rule decides
    return acl


def _instance(inst, _shared):
    inst["imdsv2_required"] = (inst.get("MetadataOptions") or {}).get("HttpTokens") == "required"
    return inst


def _snapshot(snap, _shared):
    perms = snap.get("create_volume_permissions") or []
    snap["public"] = any(p.get("Group") == "all" for p in perms)
    return snap


RESOURCE_TYPES = [
    ResourceType(
        name="aws.ec2.security_group", service="ec2",
        list=Call("describe_security_groups", "ec2:DescribeSecurityGroups", result="SecurityGroups"),
        id="GroupId", arn="arn:{partition}:ec2:{region}:{account}:security-group/{GroupId}",
        normalise=_security_group, display="GroupName",
        description="Security groups with their rules; public_ingress / public_egress list rules open to 0.0.0.0/0 or ::/0.",
    ),
    ResourceType(
        name="aws.ec2.vpc", service="ec2",
        list=Call("describe_vpcs", "ec2:DescribeVpcs", result="Vpcs"),
        shared={"flow_logs": Call("describe_flow_logs", "ec2:DescribeFlowLogs", result="FlowLogs")},
        id="VpcId", arn="arn:{partition}:ec2:{region}:{account}:vpc/{VpcId}", normalise=_vpc,
        description="VPCs with the flow logs attached to them.",
    ),
    ResourceType(
        name="aws.ec2.subnet", service="ec2",
        list=Call("describe_subnets", "ec2:DescribeSubnets", result="Subnets"),
        shared={"route_tables": Call("describe_route_tables", "ec2:DescribeRouteTables", result="RouteTables")},
        id="SubnetId", arn="arn:{partition}:ec2:{region}:{account}:subnet/{SubnetId}", normalise=_subnet,
        description="Subnets with their effective route table, default route and tier (from a tier tag, else from routes).",
    ),
    ResourceType(
        name="aws.ec2.volume", service="ec2",
        list=Call("describe_volumes", "ec2:DescribeVolumes", result="Volumes"),
        id="VolumeId", arn="arn:{partition}:ec2:{region}:{account}:volume/{VolumeId}",
        description="EBS volumes.",
    ),
    ResourceType(
        name="aws.ec2.ebs_defaults", service="ec2", list=None,
        details={"encryption_by_default": Call("get_ebs_encryption_by_default",
                                               "ec2:GetEbsEncryptionByDefault", result="EbsEncryptionByDefault")},
        description="The region's EBS encryption-by-default setting (one record per account and region).",
    ),
    ResourceType(
        name="aws.ec2.network_acl", service="ec2",
        list=Call("describe_network_acls", "ec2:DescribeNetworkAcls", result="NetworkAcls"),
        id="NetworkAclId", arn="arn:{partition}:ec2:{region}:{account}:network-acl/{NetworkAclId}",
        normalise=_network_acl,
        description="Network ACLs; open_admin_ports lists 22 / 3389 when the first matching inbound rule "
                    "for the internet (0.0.0.0/0, ::/0) allows them.",
    ),
    ResourceType(
        name="aws.ec2.instance", service="ec2",
        list=Call("describe_instances", "ec2:DescribeInstances", result="Reservations[].Instances[]",
                  params={"Filters": [{"Name": "instance-state-name",
                                       "Values": ["pending", "running", "stopping", "stopped"]}]}),
        id="InstanceId", arn="arn:{partition}:ec2:{region}:{account}:instance/{InstanceId}", normalise=_instance,
        description="EC2 instances that are not terminated; imdsv2_required from MetadataOptions.HttpTokens.",
    ),
    ResourceType(
        name="aws.ec2.snapshot", service="ec2",
        list=Call("describe_snapshots", "ec2:DescribeSnapshots", result="Snapshots",
                  params={"OwnerIds": ["self"], "Filters": [{"Name": "owner-id", "Values": ["{account}"]}]}),
        details={"create_volume_permissions": Call(
            "describe_snapshot_attribute", "ec2:DescribeSnapshotAttribute",
            params={"SnapshotId": "{SnapshotId}", "Attribute": "createVolumePermission"},
            result="CreateVolumePermissions")},
        id="SnapshotId", arn="arn:{partition}:ec2:{region}::snapshot/{SnapshotId}", normalise=_snapshot,
        description="EBS snapshots the account owns; public when createVolumePermission includes group all.",
    ),
    ResourceType(
        name="aws.ec2.image", service="ec2",
        list=Call("describe_images", "ec2:DescribeImages", result="Images", params={"Owners": ["self"]}),
        id="ImageId", arn="arn:{partition}:ec2:{region}::image/{ImageId}", display="Name",
        description="AMIs the account owns (Public says whether anyone can launch them).",
    ),
]
