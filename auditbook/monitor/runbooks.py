"""Containment runbooks, a registry (the `runbooks` seam of auditbook.hookspecs): isolate an EC2
instance, deactivate an IAM access key, disable a console login, and any a plugin adds. Each is
planned first (the exact API calls, nothing changed: the dry run), runs only with explicit
confirmation and the analyst (or admin) role, and writes what it did — including what it replaced,
so it can be undone — to the incident's timeline. Front ends list plugins.runbooks() and call
dry_run() then execute()."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional

from botocore.exceptions import BotoCoreError, ClientError

from auditbook.auth import Actor, authorize
from auditbook.collect.clients import aws_client, aws_error
from auditbook.errors import UserError, name_of, shown
from auditbook.hookspecs import hookimpl
from auditbook.monitor.incidents import ACTIVE
from auditbook.monitor.incidents import get as get_incident
from auditbook.plugins import runbooks as registered_runbooks
from auditbook.store.audit_log import record
from auditbook.store.session import writing

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


@contextmanager
def _aws(option: str, subject: str):
    """AWS calls made while planning: any botocore error is a one-line UserError naming the input."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise UserError(f"{option}: {name_of(subject)}: {aws_error(exc)}") from None


def plan_quarantine(ec2, instance_id: str) -> Plan:
    with _aws("--instance", instance_id):
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        instances = [i for r in reservations for i in r.get("Instances", [])]
        if not instances:
            raise UserError(f"--instance: {name_of(instance_id)}: no such instance")
        instance = instances[0]
        vpc = instance.get("VpcId")
        if not vpc:
            raise UserError(f"--instance: {name_of(instance_id)}: not in a VPC (no security groups to swap)")
        existing = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                         {"Name": "group-name", "Values": [QUARANTINE_GROUP]}])
    groups = sorted({g["GroupId"] for ni in instance.get("NetworkInterfaces", []) for g in ni.get("Groups", [])}
                    | {g["GroupId"] for g in instance.get("SecurityGroups", [])})
    existing = existing["SecurityGroups"]
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
    with _aws("--user", user):
        keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    match = [k for k in keys if k["AccessKeyId"] == access_key_id]
    if not match:
        raise UserError(f"--key: {name_of(access_key_id)} is not an access key of {name_of(user)}")
    return Plan("deactivate-access-key", f"{user}/{access_key_id}", before={"status": match[0]["Status"]},
                calls=[_call("iam", "update_access_key", UserName=user, AccessKeyId=access_key_id, Status="Inactive")])


def plan_disable_login(iam, user: str) -> Plan:
    try:
        profile = iam.get_login_profile(UserName=user)["LoginProfile"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
            raise UserError(f"--user: {name_of(user)} has no console login to disable") from None
        raise UserError(f"--user: {name_of(user)}: {aws_error(exc)}") from None
    except BotoCoreError as exc:
        raise UserError(f"--user: {name_of(user)}: {aws_error(exc)}") from None
    return Plan("disable-console-login", user, before={"login_profile_created": str(profile.get("CreateDate"))},
                calls=[_call("iam", "delete_login_profile", UserName=user)])


def active_incident(engine, incident_id: int) -> dict:
    """The incident a runbook answers: it must exist and still be worked on (open, investigating or
    contained), or a UserError says why not."""
    incident = get_incident(engine, incident_id)
    if incident["status"] not in ACTIVE:
        raise UserError(f"incident {incident_id} is {incident['status']}: runbooks run only on an active "
                        f"incident ({', '.join(ACTIVE)})")
    return incident


def execute(engine, actor: Actor, incident_id: int, plan: Plan, clients: dict, *, confirm: bool) -> dict:
    """Run a plan: needs confirm=True, a role that may run runbooks and an incident still active
    (open, investigating or contained); the outcome (success or the failing call) goes to the
    incident's timeline either way. Every failure is a one-line UserError (or PermissionDenied)."""
    authorize(actor, "run_runbook")
    active_incident(engine, incident_id)
    if not confirm:
        raise UserError("runbook: not confirmed: review the dry run, then confirm (--yes)")
    missing = sorted({c["service"] for c in plan.calls} - set(clients))
    if missing:
        raise UserError(f"runbook {plan.runbook}: no {', '.join(missing)} client to make its calls with")
    done, values, error = _run_calls(plan, clients)
    values.setdefault("quarantine_group", plan.before.get("quarantine_group"))
    outcome = {"runbook": plan.runbook, "target": plan.target, "calls": done, "error": error,
               "before": plan.before, "quarantine_group": values.get("quarantine_group")}
    with writing(engine) as session:
        record(session, actor, "runbook", "incident", incident_id, before=plan.before,
               after={"runbook": plan.runbook, "target": plan.target, "calls": done, "error": error},
               note=f"{plan.runbook} on {plan.target}: " + ("FAILED — " + error if error else "done"))
    if error:
        raise UserError(f"runbook {plan.runbook}: {error} (recorded on incident {incident_id})")
    return outcome


def _run_calls(plan: Plan, clients: dict) -> tuple[list[dict], dict, Optional[str]]:
    """Make the plan's calls in order, stopping at the first that fails: (calls done, values the
    calls produced, the failure as one line or None)."""
    done, values = [], {}
    for call in plan.calls:
        params = {k: _fill(v, values) for k, v in call["params"].items()}
        try:
            response = getattr(clients[call["service"]], call["operation"])(**params)
        except (ClientError, BotoCoreError) as exc:
            return done, values, f"{call['service']}:{call['operation']} failed: {aws_error(exc)}"
        if call["operation"] == "create_security_group":
            values["quarantine_group"] = response["GroupId"]
        done.append({"call": f"{call['service']}:{call['operation']}", "params": params})
    return done, values, None


def _fill(value, values: dict):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return values.get(value[1:-1], value)
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


# -- the registry ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parameter:
    """An input of a runbook: its key in `params`, the control room's label, the CLI's option."""
    name: str
    label: str
    option: str
    required: bool = True


@dataclass(frozen=True)
class Runbook:
    """A containment runbook. `plan(clients, params)` makes the dry run (a Plan) with one client per
    service in `services`; `region` names the parameter that picks the clients' region, if any."""
    name: str
    title: str
    services: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    plan: Callable[[dict, dict], Plan]
    region: Optional[str] = None


QUARANTINE = Runbook(
    "quarantine-instance", "Swap an EC2 instance's security groups for a deny-all quarantine group "
    "(the old ones are recorded).", ("ec2",),
    (Parameter("instance", "Instance id", "--instance"), Parameter("region", "Region", "--region", required=False)),
    lambda clients, p: plan_quarantine(clients["ec2"], p["instance"]), region="region")
DEACTIVATE_KEY = Runbook(
    "deactivate-access-key", "Deactivate an IAM user's access key.", ("iam",),
    (Parameter("user", "IAM user", "--user"), Parameter("key", "Access key id", "--key")),
    lambda clients, p: plan_deactivate_key(clients["iam"], p["user"], p["key"]))
DISABLE_LOGIN = Runbook(
    "disable-console-login", "Remove an IAM user's console password (login profile).", ("iam",),
    (Parameter("user", "IAM user", "--user"),),
    lambda clients, p: plan_disable_login(clients["iam"], p["user"]))


@hookimpl
def runbooks() -> list[Runbook]:
    return [QUARANTINE, DEACTIVATE_KEY, DISABLE_LOGIN]


def runbook(name: str) -> Runbook:
    """The registered runbook called `name`, or a UserError listing them."""
    known = registered_runbooks()
    if name not in known:
        raise UserError(f"runbook: {shown(name)} is not one of {', '.join(sorted(known))}")
    return known[name]


def _parameters(book: Runbook, params: dict) -> dict:
    """The runbook's parameters from `params`, stripped; a required one missing is a UserError."""
    out = {}
    for p in book.parameters:
        value = str(params.get(p.name) or "").strip()
        if p.required and not value:
            raise UserError(f"{p.option} ({p.label}): required by runbook {book.name}")
        out[p.name] = value or None
    return out


def dry_run(engine, incident_id: int, name: str, params: dict) -> tuple[Plan, dict]:
    """A runbook's plan for an active incident (checked before any AWS call) and the clients to run
    it with (pass both to execute). Nothing is changed."""
    book = runbook(name)
    values = _parameters(book, params)
    active_incident(engine, incident_id)
    region = values.get(book.region) if book.region else None
    clients = {service: aws_client(service, region) for service in book.services}
    return book.plan(clients, values), clients
