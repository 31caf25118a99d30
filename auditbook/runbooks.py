"""Containment runbooks: isolate an EC2 instance, deactivate an IAM access key, disable a console
login. Each is planned first (the exact API calls, nothing changed: the dry run), runs only with
explicit confirmation and the analyst (or admin) role, and writes what it did — including what it
replaced, so it can be undone — to the incident's timeline."""
from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.orm import Session

from auditbook.audit import record
from auditbook.auth import Actor, authorize
from auditbook.errors import UserError
from auditbook.incidents import get as get_incident

QUARANTINE_GROUP = "auditbook-quarantine"


@dataclass
class Plan:
    runbook: str
    target: str
    calls: list[dict] = field(default_factory=list)  # {"service", "operation", "params"}
    before: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [f"{c['service']}:{c['operation']} {c['params']}" for c in self.calls]


def _call(service: str, operation: str, **params) -> dict:
    return {"service": service, "operation": operation, "params": params}


def plan_quarantine(ec2, instance_id: str) -> Plan:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as exc:
        raise UserError(f"--instance: {instance_id}: {exc.response['Error']['Code']}")
    instance = reservations[0]["Instances"][0]
    vpc = instance["VpcId"]
    groups = sorted({g["GroupId"] for ni in instance.get("NetworkInterfaces", []) for g in ni.get("Groups", [])}
                    | {g["GroupId"] for g in instance.get("SecurityGroups", [])})
    existing = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                     {"Name": "group-name", "Values": [QUARANTINE_GROUP]}])["SecurityGroups"]
    plan = Plan("quarantine-instance", instance_id, before={"security_groups": groups, "vpc": vpc})
    if existing:
        qsg = existing[0]["GroupId"]
        plan.before["quarantine_group"] = qsg
        if existing[0].get("IpPermissionsEgress"):
            plan.calls.append(_call("ec2", "revoke_security_group_egress", GroupId=qsg,
                                    IpPermissions=existing[0]["IpPermissionsEgress"]))
    else:
        plan.calls.append(_call("ec2", "create_security_group", GroupName=QUARANTINE_GROUP, VpcId=vpc,
                                Description="auditbook quarantine: no inbound, no outbound"))
        plan.calls.append(_call("ec2", "revoke_security_group_egress", GroupId="{quarantine_group}",
                                IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]))
    plan.calls.append(_call("ec2", "modify_instance_attribute", InstanceId=instance_id, Groups=["{quarantine_group}"]))
    return plan


def plan_deactivate_key(iam, user: str, access_key_id: str) -> Plan:
    try:
        keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    except ClientError as exc:
        raise UserError(f"--user: {user}: {exc.response['Error']['Code']}")
    match = [k for k in keys if k["AccessKeyId"] == access_key_id]
    if not match:
        raise UserError(f"--key: {access_key_id} is not an access key of {user}")
    return Plan("deactivate-access-key", f"{user}/{access_key_id}", before={"status": match[0]["Status"]},
                calls=[_call("iam", "update_access_key", UserName=user, AccessKeyId=access_key_id, Status="Inactive")])


def plan_disable_login(iam, user: str) -> Plan:
    try:
        profile = iam.get_login_profile(UserName=user)["LoginProfile"]
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "NoSuchEntity":
            raise UserError(f"--user: {user} has no console login to disable")
        raise UserError(f"--user: {user}: {code}")
    return Plan("disable-console-login", user, before={"login_profile_created": str(profile.get("CreateDate"))},
                calls=[_call("iam", "delete_login_profile", UserName=user)])


def execute(engine, actor: Actor, incident_id: int, plan: Plan, clients: dict, *, confirm: bool) -> dict:
    """Run a plan: needs confirm=True and a role that may run runbooks; the outcome (success or the
    failing call) goes to the incident's timeline either way."""
    authorize(actor, "run_runbook")
    get_incident(engine, incident_id)  # the incident must exist
    if not confirm:
        raise UserError("runbook: not confirmed: review the dry run, then confirm (--yes)")
    done, values, error = [], {}, None
    for call in plan.calls:
        params = {k: _fill(v, values) for k, v in call["params"].items()}
        try:
            response = getattr(clients[call["service"]], call["operation"])(**params)
        except (ClientError, BotoCoreError) as exc:
            error = f"{call['service']}:{call['operation']} failed: {exc}"
            break
        if call["operation"] == "create_security_group":
            values["quarantine_group"] = response["GroupId"]
        done.append({"call": f"{call['service']}:{call['operation']}", "params": params})
    values.setdefault("quarantine_group", plan.before.get("quarantine_group"))
    outcome = {"runbook": plan.runbook, "target": plan.target, "calls": done, "error": error,
               "before": plan.before, "quarantine_group": values.get("quarantine_group")}
    with Session(engine) as session, session.begin():
        record(session, actor, "runbook", "incident", incident_id, before=plan.before,
               after={"runbook": plan.runbook, "target": plan.target, "calls": done, "error": error},
               note=f"{plan.runbook} on {plan.target}: " + ("FAILED — " + error if error else "done"))
    if error:
        raise UserError(f"runbook {plan.runbook}: {error} (recorded on incident {incident_id})")
    return outcome


def _fill(value, values: dict):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return values.get(value[1:-1], value)
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value
