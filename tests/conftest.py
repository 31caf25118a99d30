
import boto3
import pytest

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "AUDITBOOK_MAX_ATTEMPTS": "2",
}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AUDITBOOK_DB"):
        monkeypatch.delenv(key, raising=False)
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def aws():
    from moto import mock_aws
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def collect_current(regions=("us-east-1",), types=None):
    """Collect with the current credentials (in-process moto) and evaluate the bundled catalog."""
    from auditbook.collect.targets import current_target
    from auditbook.collect.clients import ClientCache
    from auditbook.catalog.model import load_catalog
    from auditbook.collect.runner import Runner
    from auditbook.evaluate.evaluator import evaluate
    from auditbook.scan import needed_types

    catalog = load_catalog()
    rtypes = needed_types(catalog) if types is None else types
    clients = ClientCache(pool=8)
    collection = Runner(workers=4, clients=clients).run([current_target(clients)], list(regions), rtypes)
    return collection, evaluate(catalog, collection)


def by_check(findings, check, name=None):
    out = [f for f in findings if f.check == check and (name is None or f.resource_name == name)]
    return out


def status_of(findings, check, name):
    found = by_check(findings, check, name)
    assert len(found) == 1, f"{check} {name}: {[(f.resource_name, f.status) for f in by_check(findings, check)]}"
    return found[0].status


class Fault:
    """Make one API operation answer with an error through botocore's real path (before-call
    returns an HTTP error response, which botocore parses, retries and raises)."""

    def __init__(self, operation: str, code: str, status: int = 400, match=None):
        self.operation, self.code, self.status, self.match = operation, code, status, match
        self.calls = 0

    def __call__(self, params=None, model=None, **kwargs):
        if model is None or model.name != self.operation:
            return None
        if self.match and not self.match(params):
            return None
        self.calls += 1
        from botocore.awsrequest import AWSResponse
        http = AWSResponse("http://127.0.0.1/", self.status, {}, None)
        parsed = {"Error": {"Code": self.code, "Message": f"injected {self.code}"},
                  "ResponseMetadata": {"HTTPStatusCode": self.status}}
        return http, parsed


@pytest.fixture
def inject(monkeypatch):
    """inject(Fault(...)) registers the fault on every client the scan creates."""
    from auditbook.collect import clients as awsclients

    faults = []
    original = awsclients.ClientCache.client

    def client(self, *args):
        bound = original(self, *args)
        made = bound.client
        if not getattr(made, "_faults_registered", False):
            for fault in faults:
                if getattr(fault, "first", False):
                    made.meta.events.register_first("before-send", fault)
                else:
                    made.meta.events.register("before-call", fault)
            made._faults_registered = True
        return bound

    monkeypatch.setattr(awsclients.ClientCache, "client", client)
    return faults.append


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on 127.0.0.1 for the whole session (tests/pgserver.py)."""
    from tests.pgserver import PostgresServer
    server = PostgresServer().start()
    yield server
    server.stop()
