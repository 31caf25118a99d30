"""EC2: security groups, network ACLs, VPCs, subnets, NAT gateways, instances, EBS volumes / snapshots /
defaults, AMIs."""
import ipaddress

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


def _network(cidr):
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except (TypeError, ValueError):
        return None


def supernets(cidr) -> list[str]:
    """Every network that contains `cidr`, from /0 down to the CIDR itself (canonical text), so a
    check can ask with JMESPath's contains() whether any of them is on an approved list."""
    net = _network(cidr)
    return [] if net is None else [str(net.supernet(new_prefix=p)) for p in range(net.prefixlen + 1)]


def _vpc_networks(vpc: dict) -> list:
    blocks = [a.get("CidrBlock") for a in vpc.get("CidrBlockAssociationSet") or []
              if (a.get("CidrBlockState") or {}).get("State", "associated") == "associated"]
    blocks += [a.get("Ipv6CidrBlock") for a in vpc.get("Ipv6CidrBlockAssociationSet") or []
               if (a.get("Ipv6CidrBlockState") or {}).get("State", "associated") == "associated"]
    return [n for n in map(_network, blocks + [vpc.get("CidrBlock")]) if n is not None]


def _inside(net, networks) -> bool:
    return any(net.version == v.version and net.subnet_of(v) for v in networks)


def rule_text(perm: dict, direction: str, cidr: str) -> str:
    """"tcp 22 from 0.0.0.0/0", "all traffic to ::/0", "udp 1024-65535 to 8.8.8.8/32"."""
    protocol = str(perm.get("IpProtocol"))
    name = {"-1": "all traffic", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}.get(protocol, protocol)
    low, high = perm.get("FromPort"), perm.get("ToPort")
    ports = ""
    if name in ("tcp", "udp") and low is not None:
        ports = f" {low}" if low == high else (" all ports" if (low, high) in ((0, 65535), (-1, -1)) else f" {low}-{high}")
    return f"{name}{ports} {direction} {cidr}"


def _outside_rules(permissions, networks, direction: str, skip_world: bool) -> list[dict]:
    """Each (rule, CIDR) of a rule list whose CIDR is not inside the VPC: readable text and supernets."""
    out = []
    for perm in permissions or []:
        cidrs = [r.get("CidrIp") for r in perm.get("IpRanges", [])] + \
                [r.get("CidrIpv6") for r in perm.get("Ipv6Ranges", [])]
        for cidr in cidrs:
            net = _network(cidr)
            if net is None or (skip_world and cidr in WORLD) or _inside(net, networks):
                continue
            out.append({"rule": rule_text(perm, direction, cidr), "cidr": str(net), "supernets": supernets(cidr)})
    return out


def _security_group(sg, shared):
    """public_*: rules open to the internet; egress_outside_vpc / ingress_outside_vpc: CIDR rules whose
    address range is not inside the group's VPC (ingress from the internet is left to public_ingress)."""
    sg["public_ingress"] = _open_rules(sg.get("IpPermissions"))
    sg["public_egress"] = _open_rules(sg.get("IpPermissionsEgress"))
    vpc = next((v for v in shared.get("vpcs") or [] if v.get("VpcId") == sg.get("VpcId")), {})
    networks = _vpc_networks(vpc) if vpc else []
    sg["egress_outside_vpc"] = _outside_rules(sg.get("IpPermissionsEgress"), networks, "to", skip_world=False)
    sg["ingress_outside_vpc"] = _outside_rules(sg.get("IpPermissions"), networks, "from", skip_world=True)
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


def _is_default(route) -> bool:
    return route.get("DestinationCidrBlock") == "0.0.0.0/0" or route.get("DestinationIpv6CidrBlock") == "::/0"


def _default_route(table):
    """The route for all internet addresses (IPv4 or IPv6); an internet gateway wins if any."""
    routes = [_route_kind(r) for r in (table or {}).get("Routes", []) if r.get("State") != "blackhole" and _is_default(r)]
    if not routes:
        return None
    kind, target = next((r for r in routes if r[0] == "igw"), routes[0])
    return {"type": kind, "target": target}


def _destination(route) -> str:
    return route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock") or route.get("DestinationPrefixListId") or "?"


def _nat_gateway(nat_id, shared) -> dict:
    """The NAT gateway a route names: id, state and availability zone (null when it is not listed)."""
    nat = next((n for n in shared.get("nat_gateways") or [] if n.get("NatGatewayId") == nat_id), None)
    if nat is None:
        return {"id": nat_id, "state": "not found", "availability_zone": None}
    zone = next((s.get("AvailabilityZone") for s in shared.get("subnets") or [] if s.get("SubnetId") == nat.get("SubnetId")), None)
    return {"id": nat_id, "state": nat.get("State"), "availability_zone": zone}


def _routes(subnet, table, shared):
    """igw_routes: every route through an internet gateway (AWS's definition of a public subnet), as
    "destination to igw-…"; nat_gateway: the NAT the default route uses; blackhole_default_route."""
    routes = (table or {}).get("Routes", [])
    subnet["default_route"] = _default_route(table)
    subnet["igw_routes"] = [f"{_destination(r)} to {r['GatewayId']}" for r in routes
                            if (r.get("GatewayId") or "").startswith("igw-") and r.get("State") != "blackhole"]
    route = subnet["default_route"] or {}
    subnet["nat_gateway"] = _nat_gateway(route["target"], shared) if route.get("type") == "nat" else None
    dead = next((r for r in routes if r.get("State") == "blackhole" and _is_default(r)), None)
    subnet["blackhole_default_route"] = _route_kind(dead)[1] if dead and not route else None


def _subnet(subnet, shared):
    tables = shared.get("route_tables") or []
    explicit = next((t for t in tables for a in t.get("Associations", []) if a.get("SubnetId") == subnet["SubnetId"]), None)
    main = next((t for t in tables if t.get("VpcId") == subnet.get("VpcId")
                 and any(a.get("Main") for a in t.get("Associations", []))), None)
    table = explicit or main
    subnet["route_table_id"] = (table or {}).get("RouteTableId")
    _routes(subnet, table, shared)
    tags = {t["Key"]: t.get("Value", "") for t in subnet.get("Tags", [])}
    declared = next((tags[k].strip().lower() for k in TIER_TAGS if k in tags), None)
    if declared in ("private", "public"):
        subnet["tier"], subnet["tier_source"] = declared, "tag"
    else:
        subnet["tier"], subnet["tier_source"] = ("public" if subnet["igw_routes"] else "private"), "routes"
    return subnet


def _nat(nat, shared):
    """flow_logs_active: an active flow log that records accepted traffic (ALL or ACCEPT) on one of the
    NAT gateway's network interfaces, its subnet or its VPC."""
    nat["network_interfaces"] = [a.get("NetworkInterfaceId") for a in nat.get("NatGatewayAddresses") or []
                                 if a.get("NetworkInterfaceId")]
    covered = set(nat["network_interfaces"]) | {nat.get("SubnetId"), nat.get("VpcId")}
    logs = [f for f in shared.get("flow_logs") or [] if f.get("ResourceId") in covered - {None}]
    nat["flow_logs"] = logs
    nat["flow_logs_active"] = any(f.get("FlowLogStatus") == "ACTIVE" and f.get("TrafficType") in ("ALL", "ACCEPT")
                                  for f in logs)
    return nat


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
    snap["encrypted"] = snap.get("Encrypted") is True
    return snap


RESOURCE_TYPES = [
    ResourceType(
        name="aws.ec2.security_group", service="ec2",
        list=Call("describe_security_groups", "ec2:DescribeSecurityGroups", result="SecurityGroups"),
        shared={"vpcs": Call("describe_vpcs", "ec2:DescribeVpcs", result="Vpcs")},
        id="GroupId", arn="arn:{partition}:ec2:{region}:{account}:security-group/{GroupId}",
        normalise=_security_group, display="GroupName",
        description="Security groups with their rules; public_ingress / public_egress list rules open to 0.0.0.0/0 or "
                    "::/0; egress_outside_vpc / ingress_outside_vpc list CIDR rules outside the group's VPC (ingress: "
                    "not the internet), each with rule text, cidr and supernets (every network containing it).",
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
        shared={"route_tables": Call("describe_route_tables", "ec2:DescribeRouteTables", result="RouteTables"),
                "nat_gateways": Call("describe_nat_gateways", "ec2:DescribeNatGateways", result="NatGateways"),
                "subnets": Call("describe_subnets", "ec2:DescribeSubnets", result="Subnets")},
        id="SubnetId", arn="arn:{partition}:ec2:{region}:{account}:subnet/{SubnetId}", normalise=_subnet,
        description="Subnets with their effective route table, default route, igw_routes (every route through an "
                    "internet gateway), nat_gateway (id, state, availability_zone of the NAT the default route uses), "
                    "blackhole_default_route, and tier (from a tier tag, else public when any route uses an internet gateway).",
    ),
    ResourceType(
        name="aws.ec2.nat_gateway", service="ec2",
        list=Call("describe_nat_gateways", "ec2:DescribeNatGateways", result="NatGateways"),
        shared={"flow_logs": Call("describe_flow_logs", "ec2:DescribeFlowLogs", result="FlowLogs")},
        id="NatGatewayId", arn="arn:{partition}:ec2:{region}:{account}:natgateway/{NatGatewayId}", normalise=_nat,
        description="NAT gateways; network_interfaces; flow_logs_active when an active flow log recording accepted "
                    "traffic covers one of its interfaces, its subnet or its VPC.",
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
        description="EBS snapshots the account owns; public when createVolumePermission includes group all; "
                    "encrypted (Encrypted).",
    ),
    ResourceType(
        name="aws.ec2.image", service="ec2",
        list=Call("describe_images", "ec2:DescribeImages", result="Images", params={"Owners": ["self"]}),
        id="ImageId", arn="arn:{partition}:ec2:{region}::image/{ImageId}", display="Name",
        description="AMIs the account owns (Public says whether anyone can launch them).",
    ),
]
