"""The evaluator at organisation scale (issue 16 §4): the account-scoped checks index the collection
once and evaluate the parts of a condition that read only `all` once per check, yet every finding,
status, message, evidence list and order is what the straightforward evaluation gives; the work per
record does not grow with the number of accounts; and the plugin manager is built once when many
threads ask for it at the same moment."""
import datetime as dt
import threading
import time
from collections import Counter

import pluggy
import pytest

from auditbook import plugins
from auditbook.catalog.model import load_catalog
from auditbook.collect.records import Collection, Gap, Record, Scope
from auditbook.evaluate.conditions import Context, SharedValues
from auditbook.evaluate.evaluator import ACCOUNT_SCOPE, Evaluator, evaluate
from auditbook.evaluate.observed import rendered

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
REGION = "us-east-1"
TRAIL, MONITORING, CONFIG, BACKUP = ("aws.cloudtrail.trail", "aws.logs.security_monitoring", "aws.config.region",
                                    "aws.backup.plan")
EVENTS = ("unauthorized-api-calls", "console-login-without-mfa", "root-usage", "cloudtrail-changes")


def account_id(i: int) -> str:
    return f"{100000000000 + i}"


# --- the straightforward evaluation: the evaluator as it was before issue 16 -------------------------
class NaiveContext(Context):
    """Every question answered by scanning the whole type, as before the indexes."""

    def records_in(self, rtype, account=None):
        return [r for r in self.by_type.get(rtype, []) if account is None or r.account == account]

    def lookup(self, rtype, fieldname, account=None):
        return [r.data.get(fieldname) for r in self.by_type.get(rtype, [])
                if r.data.get(fieldname) is not None and (account is None or r.account == account)]

    def type_gaps(self, rtype, account=None):
        gaps = [s.gap for s in self.scopes_by_type.get(rtype, [])
                if s.gap and (account is None or s.account == account)]
        return gaps + [g for r in self.by_type.get(rtype, []) if account is None or r.account == account
                       for g in r.gaps.values()]

    def dependency_error(self, condition):
        return self._dependency_error(condition.depends_on)


class ReferenceEvaluator(Evaluator):
    """Each account's records filtered from the whole type, the whole condition evaluated afresh for
    every account, the whole message template rendered for every failure."""

    def __init__(self, catalog, collection, now=None):
        super().__init__(catalog, collection, now)
        self.context = NaiveContext(collection, now, self.context.functions)

    def _said(self, c, verdict, data):
        status, message = self._status(c, verdict)
        if status == "FAIL" and c.message is not None:
            return status, rendered(c.message, data, self.context.opts)
        return super()._said(c, verdict, data)

    def _account_check(self, c):
        rtype, ctx = c.check.resource, self.context
        accounts = sorted({s.account for s in ctx.scopes_by_type.get(rtype, []) if c.check.covers_account(s.account)})
        tagged = [r for r in ctx.by_type.get(rtype, []) if c.check.matches_tags(r.tags)]
        every = [r.data for r in tagged]
        out = []
        for account in accounts:
            records = [r for r in tagged if r.account == account]
            evidence = [h for r in records for h in r.evidence]
            gaps = ctx.type_gaps(rtype, None if c.condition.reads_all else account)
            args = (account, "global", ACCOUNT_SCOPE, account, f"account {account}")
            if gaps:
                out.append(self._finding(c, "ERROR", *args, f"{len(gaps)} evidence gap(s); first: {gaps[0].reason()}",
                                         evidence, name="account"))
                continue
            dep_error = ctx.dependency_error(c.condition)
            if dep_error:
                out.append(self._finding(c, "ERROR", *args, dep_error, evidence, name="account"))
                continue
            data = {"resources": [r.data for r in records], "all": every}
            status, message = self._said(c, ctx.apply(c.condition, data), data)
            if status:
                out.append(self._finding(c, status, *args, message, evidence, name="account"))
        return out


# --- an organisation of n accounts, built without AWS --------------------------------------------------
def _trail(account: str, i: int) -> dict:
    kind = i % 5
    if kind == 0:  # the organisation trail, homed here
        return {"Name": f"org-{i}", "IsOrganizationTrail": True, "IsMultiRegionTrail": True, "is_logging": True,
                "LogFileValidationEnabled": True, "KmsKeyId": "k", "org_log_group": f"/org/{i}",
                "cloudwatch_log_group": f"/org/{i}", "logs_own_bucket_data_events": False, "S3BucketName": "b"}
    return {"Name": f"trail-{i}", "IsOrganizationTrail": False, "IsMultiRegionTrail": kind != 1,
            "is_logging": kind != 2, "LogFileValidationEnabled": kind != 3, "KmsKeyId": "k" if kind != 4 else None,
            "cloudwatch_log_group": f"/trail/{account}", "logs_own_bucket_data_events": kind == 3,
            "S3BucketName": f"b-{i}", "s3_data_event_buckets": [f"b-{i}"] if kind == 3 else []}


def _monitoring(account: str, i: int) -> dict:
    groups = (f"/trail/{account}", f"/org/{i - i % 5}", "/elsewhere")  # root usage: never on the org's group
    pick = (lambda n, event: (i + n) % 3 if event != "root-usage" else 0 if i % 3 else 2)
    return {"monitored": [{"event": event, "log_group": groups[pick(n, event)]}
                          for n, event in enumerate(EVENTS) if (i + n) % 4]}


def organisation(n: int, gapped: bool = False, record_cls=Record) -> Collection:
    """Per account: a trail (every fifth the organisation's), alarm coverage, config recorders in two
    regions, backup plans (tagged or not); `gapped`: a failed list call and records with gaps."""
    col = Collection()

    def add(rtype, account, rid, data, tags=None, gaps=None, region=REGION):
        col.records.append(record_cls(rtype, account, region, rid, f"arn:{account}:{rid}", data,
                                      [f"sha-{account}-{rid}"], gaps or {}, region, rid, tags or {}))

    for i in range(n):
        account = account_id(i)
        for rtype in (TRAIL, MONITORING, CONFIG, BACKUP):
            failed = gapped and rtype == BACKUP and i % 7 == 3
            gap = Gap(account, REGION, rtype, "backup:ListBackupPlans", "AccessDenied", "no") if failed else None
            col.scopes.append(Scope(account, REGION, rtype, gap))
        if i % 6 != 4:
            add(TRAIL, account, f"trail-{i}", _trail(account, i))
        monitoring_gap = {"m": Gap(account, REGION, MONITORING, "logs:DescribeMetricFilters", "Throttling", "slow")}
        add(MONITORING, account, f"mon-{i}", _monitoring(account, i),
            gaps=monitoring_gap if gapped and i % 9 == 5 else None)
        for region in (REGION, "eu-west-1"):
            add(CONFIG, account, f"config-{i}-{region}", {"records_global_resources": (i + len(region)) % 3 == 0},
                region=region)
        for p in range(i % 3):
            add(BACKUP, account, f"plan-{i}-{p}", {"BackupPlanName": f"p{p}", "rule_count": (i + p) % 2},
                tags={"audit": "yes"} if p else {})
    return col


def _custom(check, **changes):
    return check.model_copy(update={"tags": {}, "accounts": [], "applies": None, "message": None, **changes})


def catalog_under_test():
    """The catalog's account-scoped checks, a resource check reading values()/values_in(), and account
    checks with what the sharing has to get right: an `all` part that raises, an `applies` reading only
    `all`, tag and account scoping, a message with shared and per-account placeholders, no message."""
    catalog = load_catalog()
    account_checks = [c for c in catalog.checks if c.scope == "account"]
    base = account_checks[0]
    first = account_id(0)
    custom = [
        _custom(base, id="scale-shared-part-raises", resource=TRAIL,
                expect="length(resources[?is_logging]) > `0` || abs(all[0].Name) > `0`"),
        _custom(base, id="scale-applies-reads-all", resource=BACKUP, expect="length(resources) > `1`",
                applies="length(all[?rule_count > `0`]) > `1`",
                message="{resources[].BackupPlanName} of {length(all)} plans; broken: {abs(all[0].BackupPlanName)}; "
                        "groups: {values('aws.cloudtrail.trail', 'cloudwatch_log_group')}"),
        _custom(base, id="scale-tags-and-accounts", resource=BACKUP, tags={"audit": ["yes"]},
                accounts=[account_id(i) for i in range(0, 40, 3)],
                expect="length(resources[?rule_count > `0`]) > `0` && length(all) > `2`"),
        _custom(base, id="scale-resource-values", resource=TRAIL, scope="resource", expect="is_logging",
                message="{Name} is off; groups: {values('aws.cloudtrail.trail', 'cloudwatch_log_group')}; "
                        f"first account's: {{values_in('aws.cloudtrail.trail', 'Name', '{first}')}}"),
    ]
    return catalog.model_copy(update={"checks": account_checks + custom})


@pytest.mark.parametrize("n", [7, 40])
@pytest.mark.parametrize("gapped", [False, True], ids=["clean", "gapped"])
def test_findings_equal_the_straightforward_evaluation(n, gapped):
    catalog = catalog_under_test()
    collection = organisation(n, gapped)
    expected = ReferenceEvaluator(catalog, collection, NOW).run()
    found = evaluate(catalog, collection, NOW)
    assert [f.as_dict() | {"key": f.key()} for f in found] == [f.as_dict() | {"key": f.key()} for f in expected]
    statuses = Counter((f.check, f.status) for f in found)
    # the organisation exercises what the sharing must keep: passes, errors, failures with and without a message
    assert statuses["scale-shared-part-raises", "PASS"] and statuses["scale-shared-part-raises", "ERROR"]
    assert statuses["scale-resource-values", "FAIL"] and statuses["cloudtrail-s3-data-events-audit-bucket", "FAIL"]
    raised = [f for f in found if f.check == "scale-shared-part-raises" and f.status == "ERROR"]
    assert raised[0].message.startswith("cannot evaluate scale-shared-part-raises: JMESPathTypeError")
    if gapped:  # a record gap of a type read through `all`: every account of the check is unknown
        assert statuses["backup-plan-exists", "ERROR"] and statuses["cw-alarm-root-usage", "ERROR"] == n
        assert statuses["scale-applies-reads-all", "ERROR"] == n
    else:
        assert statuses["scale-applies-reads-all", "FAIL"] and statuses["scale-tags-and-accounts", "FAIL"]
        assert statuses["cw-alarm-root-usage", "PASS"] and statuses["cw-alarm-root-usage", "FAIL"]
        assert statuses["cw-alarm-unauthorized-api-calls", "PASS"] == n  # the organisation's alarm covers all


def test_a_shared_part_is_evaluated_once_per_check_and_only_when_reached(monkeypatch):
    catalog = catalog_under_test()
    made = []
    real_init = SharedValues.__init__

    def kept(self, *args):
        real_init(self, *args)
        made.append(self)
    monkeypatch.setattr(SharedValues, "__init__", kept)
    findings = evaluate(catalog, organisation(40), NOW)
    shared = dict(zip([c.id for c in catalog.checks if c.scope == "account"], made, strict=True))
    assert shared["cw-alarm-root-usage"].nodes and shared["cw-alarm-root-usage"].evaluations == 1
    assert shared["scale-shared-part-raises"].evaluations == 1  # the error, kept and raised again
    assert shared["scale-applies-reads-all"].evaluations == 1
    assert not shared["backup-plan-exists"].nodes  # reads only `resources`: nothing to share
    raised = [f for f in findings if f.check == "scale-shared-part-raises" and f.status == "ERROR"]
    assert len(raised) > 1 and len({f.message for f in raised}) == 1
    # where no account reaches the `all` side (every one passes on its own records), it is never evaluated
    passing = organisation(40)
    for rec in passing.records:
        rec.data["is_logging"] = True
    with_trail = {r.account for r in passing.records if r.type == TRAIL}
    passing.scopes = [s for s in passing.scopes if s.resource_type != TRAIL or s.account in with_trail]
    made.clear()
    evaluate(catalog.model_copy(update={"checks": [c for c in catalog.checks if c.id == "scale-shared-part-raises"]}),
             passing, NOW)
    assert made[0].nodes and made[0].evaluations == 0


class CountedRecord(Record):
    """A record that counts how often its account is read (what filtering records by account does)."""
    __slots__ = ()
    reads = 0

    @property
    def account(self):
        CountedRecord.reads += 1
        return Record.__dict__["account"].__get__(self, Record)

    @account.setter
    def account(self, value):
        Record.__dict__["account"].__set__(self, value)


class CountedData(dict):
    """A record's data that counts how often a field is read (jmespath reads a field with get())."""
    reads = 0

    def get(self, *args):
        CountedData.reads += 1
        return super().get(*args)


def _reads(n: int) -> tuple[float, float]:
    """Reads of a record's account and of its data's fields, per record, evaluating the account checks."""
    collection = organisation(n, gapped=True, record_cls=CountedRecord)
    for rec in collection.records:
        rec.data = CountedData(rec.data)
    catalog = catalog_under_test()
    catalog = catalog.model_copy(update={"checks": [c for c in catalog.checks if c.scope == "account"]})
    CountedRecord.reads = CountedData.reads = 0
    evaluate(catalog, collection, NOW)
    return CountedRecord.reads / len(collection.records), CountedData.reads / len(collection.records)


def test_the_work_per_record_does_not_grow_with_the_accounts():
    """Not a timing: how often a record is looked at. A per-account scan of the whole type (filtering
    each account's records, its gaps) or `all` read again for each account makes it grow with them."""
    accounts_small, fields_small = _reads(30)
    accounts_large, fields_large = _reads(120)
    assert accounts_large <= 1.1 * accounts_small, (accounts_small, accounts_large)
    assert fields_large <= 1.1 * fields_small, (fields_small, fields_large)
    assert accounts_large < 20 and fields_large < 40  # a handful per record and check, not one per account


# --- the plugin manager under threads ---------------------------------------------------------------------
@pytest.fixture
def fresh_plugins(monkeypatch):
    """A process whose plugin manager has not been built yet (the session's is put back afterwards);
    building it is slow, as loading entry points can be, so that threads meet inside it."""
    monkeypatch.setattr(plugins, "_manager", None)
    monkeypatch.setattr(plugins, "_resource_types", None)
    monkeypatch.setattr(plugins, "_loaded", set())
    slow = pluggy.PluginManager.load_setuptools_entrypoints

    def load_slowly(self, group, name=None):
        time.sleep(0.05)
        return slow(self, group, name)
    monkeypatch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints", load_slowly)


def test_threads_asking_at_once_share_one_manager_with_the_built_ins(fresh_plugins):
    threads_n = 8
    start = threading.Barrier(threads_n)
    managers, types, errors = [], [], []

    def ask():
        try:
            start.wait()
            managers.append(plugins.manager())
            types.append(plugins.resource_types())
        except Exception as exc:  # noqa: BLE001 — collected and asserted below
            errors.append(exc)
    workers = [threading.Thread(target=ask) for _ in range(threads_n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert len({id(m) for m in managers}) == 1 and managers[0] is plugins.manager()
    assert all("aws.s3.bucket" in found for found in types)
    assert "aws.s3.bucket" in plugins.resource_types()
    assert "collectors" in {name for name, _ in plugins.manager().list_name_plugin()}
