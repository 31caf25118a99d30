"""deploy/: the systemd units and timers, the Kubernetes manifests, the OIDC proxy and the scripts they
start (docs/operations.md). Parsed, not run: every auditbook command line in them is parsed by the real
command line (so an option that does not exist, a missing required one or a bad value fails here), every
timer names a unit of the folder and fires when the issue says, every pod runs as non-root on a read-only
root file system, and no secret is written inline."""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SYSTEMD = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"
SCRIPTS = DEPLOY / "bin"
PROXY = DEPLOY / "proxy"
ENV_EXAMPLE = SYSTEMD / "auditbook.env.example"
LONG_RUNNING = ("auditbook-watch.service", "auditbook-control-room.service", "auditbook-exporter.service")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$|ROUTING_KEY|WEBHOOK|AUDITBOOK_DB", re.IGNORECASE)
PASSWORD_IN_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]+:[^@/\s]+@", re.IGNORECASE)
SCRIPT_SAMPLES = {"period": "2026Q4", "AUDITBOOK_PACKETS": "/var/lib/auditbook/packets",
                  "AUDITBOOK_SIGNER": "ed25519:/run/credentials/auditbook-packet.service/signing.key"}


# -- reading the files --------------------------------------------------------------------------

def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file: section -> [(key, value)] in order (keys repeat: Environment=, LoadCredential=)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None and not raw.rstrip().endswith("\\"), f"{path.name}:{number}: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= appears {len(found)} times"
    return found[0]


def unit_files(suffix: str) -> list[Path]:
    return sorted(SYSTEMD.glob(f"*{suffix}"))


def env_file(path: Path) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {k.strip(): v.strip() for k, v in pairs}


def unit_environment(unit: dict) -> dict[str, str]:
    """What ExecStart's ${VAR} expand to: the EnvironmentFile (its example here), then Environment=."""
    env = dict(env_file(ENV_EXAMPLE)) if values(unit, "Service", "EnvironmentFile") else {}
    for assignment in values(unit, "Service", "Environment"):
        for word in shlex.split(assignment):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def manifests() -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        out += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return out


def pod_specs() -> list[tuple[str, dict]]:
    """(name, pod spec) of every Deployment and CronJob."""
    found = []
    for _, doc in manifests():
        if doc["kind"] == "Deployment":
            found.append((doc["metadata"]["name"], doc["spec"]["template"]["spec"]))
        elif doc["kind"] == "CronJob":
            found.append((doc["metadata"]["name"], doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return found


# -- the command lines ------------------------------------------------------------------------------

def script_command_lines(path: Path) -> list[list[str]]:
    """The auditbook invocations of a deploy/bin script, its shell variables replaced by sample values
    (an unknown variable fails: the samples must cover what the line uses)."""
    lines = []
    for line in path.read_text().splitlines():
        words = line.strip().split(maxsplit=1)
        if len(words) == 2 and words[0] == "exec" and "auditbook" in words[1].split()[0]:
            text = re.sub(r'"\$\{AUDITBOOK:-auditbook\}"', "auditbook", words[1])
            text = re.sub(r"\$\{?(\w+)\}?", lambda m: SCRIPT_SAMPLES[m.group(1)], text)
            lines.append(shlex.split(text))
    return lines


def exec_start_argv(unit: dict) -> list[str]:
    command = one(unit, "Service", "ExecStart").lstrip("-@+!:")
    env = unit_environment(unit)
    command = command.replace("%d", "/run/credentials/unit").replace("%%", "%")
    command = re.sub(r"\$\{(\w+)\}", lambda m: shlex.quote(env[m.group(1)]), command)
    return shlex.split(command)


def expanded(argv: list[str]) -> list[list[str]]:
    """auditbook argv lists of one command: itself, or the auditbook lines of the deploy/bin script it runs."""
    if Path(argv[0]).name == "auditbook":
        return [argv]
    script = next((Path(a).name for a in argv if (SCRIPTS / Path(a).name).is_file()), None)
    return script_command_lines(SCRIPTS / script) if script else []


def auditbook_command_lines() -> list[tuple[str, list[str]]]:
    """Every auditbook command line in deploy/: (where, argv without the program name)."""
    found = []
    for path in unit_files(".service"):
        for argv in expanded(exec_start_argv(read_unit(path))):
            found.append((path.name, argv[1:]))
    for name, spec in pod_specs():
        for container in spec["containers"]:
            for argv in expanded([*container.get("command", []), *container.get("args", [])]):
                found.append((f"{name}/{container['name']}", argv[1:]))
    return found


def parse_auditbook(argv: list[str]):
    """The click context of `auditbook ARGV` as the real command line builds it (options converted and
    checked, nothing run); raises the click error an unknown option, a bad value or a missing required
    option gives."""
    import typer

    from auditbook.cli.main import registered_app
    command = typer.main.get_command(registered_app())
    ctx = command.make_context("auditbook", list(argv))
    while hasattr(command, "resolve_command"):  # a group: its command (and sub-group) next
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


def parse_dask(argv: list[str]):
    from distributed.cli import dask_scheduler, dask_worker
    commands = {"scheduler": dask_scheduler.main, "worker": dask_worker.main}
    assert argv[0] in commands, f"dask {argv[0]}: not a command these manifests may use"
    return commands[argv[0]].make_context(f"dask {argv[0]}", list(argv[1:]))


COMMAND_LINES = auditbook_command_lines()


def test_every_service_runs_an_auditbook_command_that_is_found():
    """Each unit and workload is counted (an unparsed ExecStart would hide a wrong option)."""
    places = {where for where, _ in COMMAND_LINES}
    commands = {argv[0] for _, argv in COMMAND_LINES}
    assert {"auditbook-scan.service", "auditbook-watch.service", "auditbook-packet.service",
            "auditbook-control-room.service", "auditbook-exporter.service"} <= places
    assert {"auditbook-scan/scan", "auditbook-scan-dask/scan", "auditbook-watch/watch",
            "auditbook-packet/packet", "auditbook-control-room/control-room"} <= places
    assert commands == {"scan", "watch", "packet", "app", "exporter"}


@pytest.mark.parametrize("where,argv", COMMAND_LINES, ids=[f"{w}:{a[0]}" for w, a in COMMAND_LINES])
def test_every_auditbook_command_line_is_accepted_by_the_cli(where, argv):
    ctx = parse_auditbook(argv)
    assert ctx.command.name == argv[0]


def test_the_parser_refuses_what_the_cli_refuses():
    """The check above can fail: a made-up option, a value out of range, a missing required option."""
    from typer import (  # typer vendors click: its errors are TyperException
        BadParameter,
        TyperException,
    )
    with pytest.raises(TyperException, match="No such option: --no-such-option"):
        parse_auditbook(["scan", "--regions", "all", "--no-such-option"])
    with pytest.raises(BadParameter):
        parse_auditbook(["watch", "--interval", "3"])
    with pytest.raises(TyperException, match="Missing parameter: signer"):
        parse_auditbook(["packet", "--period", "2026Q4", "--out", "/tmp/p"])
    with pytest.raises(TyperException, match="No such command 'scann'"):
        parse_auditbook(["scann"])
    with pytest.raises(TyperException, match="No such option: --no-such-option"):
        parse_auditbook(["evidence", "add", "--no-such-option"])
    assert parse_auditbook(["scan", "--workers", "8"]).params["workers"] == 8


def test_the_scripts_compute_the_packet_and_read_what_the_units_give_them():
    """The quarterly script builds the packet into PACKETS/PERIOD with the signer from its environment,
    and both places that start it give it that environment."""
    [argv] = script_command_lines(SCRIPTS / "auditbook-quarterly-packet")
    params = parse_auditbook(argv[1:]).params
    assert (params["period"], str(params["out_dir"])) == ("2026Q4", "/var/lib/auditbook/packets/2026Q4")
    assert params["signer"] == SCRIPT_SAMPLES["AUDITBOOK_SIGNER"]
    unit_env = unit_environment(read_unit(SYSTEMD / "auditbook-packet.service"))
    assert unit_env["AUDITBOOK_SIGNER"] == "ed25519:%d/signing.key" and "AUDITBOOK_PACKETS" in unit_env
    [spec] = [s for name, s in pod_specs() if name == "auditbook-packet"]
    env = {e["name"] for e in spec["containers"][0]["env"]}
    assert {"AUDITBOOK_SIGNER", "AUDITBOOK_PACKETS", "AUDITBOOK_DB"} <= env


def test_dask_workloads_use_options_dask_has():
    used = []
    for name, spec in pod_specs():
        for container in spec["containers"]:
            if container.get("command") == ["dask"]:
                used.append(parse_dask(container["args"]).command.name)
    assert sorted(used) == ["scheduler", "worker"]
    with pytest.raises(Exception, match="No such option"):
        parse_dask(["worker", "tcp://x:8786", "--no-such-option"])


def test_the_dask_scan_points_at_the_scheduler_service():
    services = {(d["metadata"]["name"], d["metadata"]["namespace"]): d for _, d in manifests() if d["kind"] == "Service"}
    [argv] = [a for where, a in COMMAND_LINES if where == "auditbook-scan-dask/scan"]
    executor = urlsplit(argv[argv.index("--executor") + 1])
    name, namespace = executor.hostname.split(".")[:2]
    ports = [p["port"] for p in services[(name, namespace)]["spec"]["ports"]]
    assert executor.scheme == "tls" and executor.port in ports


def test_the_dask_cluster_speaks_mutual_tls_only_and_its_workers_hold_no_scanner_role():
    """A scheduler runs whatever code its clients send (the attack pass): every Dask pod and the scan
    require encryption with the CA and a certificate from the Secret; the workers run as their own
    ServiceAccount, not the scanner's (which can sign packets and write evidence)."""
    dask_pods = {name: spec for name, spec in pod_specs()
                 if any(c.get("command") == ["dask"] for c in spec["containers"]) or name == "auditbook-scan-dask"}
    assert len(dask_pods) == 3, sorted(dask_pods)
    for name, spec in dask_pods.items():
        for container in spec["containers"]:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert env.get("DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION") == "True", name
            assert env.get("DASK_DISTRIBUTED__COMM__TLS__CA_FILE", "").startswith("/etc/dask-tls/"), name
            assert any(k.endswith("__CERT") for k in env) and any(k.endswith("__KEY") for k in env), name
            assert not any(str(a).startswith("tcp://") for a in container.get("args", [])), name
    workers = [spec for name, spec in dask_pods.items() if name == "auditbook-dask-worker"]
    assert workers and all(w["serviceAccountName"] == "auditbook-dask-worker" for w in workers)


# -- systemd ------------------------------------------------------------------------------------------

HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": ""}


@pytest.mark.parametrize("path", unit_files(".service"), ids=lambda p: p.name)
def test_every_service_is_hardened_and_reads_its_settings_from_files(path):
    unit = read_unit(path)
    assert one(unit, "Unit", "Description")
    user = one(unit, "Service", "User")
    assert user not in ("root", "0") and one(unit, "Service", "Group") == user
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, f"{path.name}: {key}"
    assert values(unit, "Service", "EnvironmentFile") == ["/etc/auditbook/auditbook.env"]
    assert "PGPASSFILE=%d/pgpass" in values(unit, "Service", "Environment")
    assert "pgpass:/etc/auditbook/pgpass" in values(unit, "Service", "LoadCredential")
    if one(unit, "Service", "Type") == "oneshot":
        assert values(unit, "Install", "WantedBy") == [], f"{path.name}: a timer starts it"
    if path.name in LONG_RUNNING:
        assert one(unit, "Service", "Restart") == "on-failure"
        assert values(unit, "Install", "WantedBy") == ["multi-user.target"]
    writable = " ".join(values(unit, "Service", "ReadWritePaths")).split()
    assert all(p.startswith(("/var/lib/auditbook", "/var/backups/auditbook")) for p in writable)


def test_the_watch_service_restarts_on_failure_and_runs_the_loop():
    unit = read_unit(SYSTEMD / "auditbook-watch.service")
    argv = exec_start_argv(unit)
    assert one(unit, "Service", "Type") == "simple" and "--once" not in argv
    params = parse_auditbook(argv[1:]).params
    assert params["bucket"] == [env_file(ENV_EXAMPLE)["AUDITBOOK_TRAIL_BUCKET"]] and params["interval"] == 60


@pytest.mark.parametrize("path", unit_files(".timer"), ids=lambda p: p.name)
def test_every_timer_starts_a_service_of_the_folder(path):
    unit = read_unit(path)
    service = one(unit, "Timer", "Unit")
    assert service == path.name.replace(".timer", ".service") and (SYSTEMD / service).is_file()
    assert one(unit, "Timer", "Persistent") == "yes"
    assert values(unit, "Install", "WantedBy") == ["timers.target"]
    calendar_times(one(unit, "Timer", "OnCalendar"), dt.datetime(2026, 1, 1), 1)  # parses


def calendar_field(text: str, low: int, high: int) -> set[int]:
    """One field of the OnCalendar syntax these timers use: `*`, or numbers separated by commas."""
    if text == "*":
        return set(range(low, high + 1))
    numbers = {int(part) for part in text.split(",") if re.fullmatch(r"\d{1,4}", part)}
    assert len(numbers) == len(text.split(",")) and all(low <= n <= high for n in numbers), text
    return numbers


def calendar_times(spec: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    """The next `count` times (UTC) an OnCalendar value of the form `Y-M-D HH:MM:SS UTC` fires after `start`."""
    match = re.fullmatch(r"(\S+)-(\S+)-(\S+) (\d\d):(\d\d):(\d\d) UTC", spec)
    assert match, f"OnCalendar={spec}: not `*-MM-DD HH:MM:SS UTC` (these timers name UTC explicitly)"
    year, month, day = (calendar_field(match[1], 1970, 2199), calendar_field(match[2], 1, 12),
                        calendar_field(match[3], 1, 31))
    hour, minute, second = (calendar_field(match[i], 0, 59 if i > 4 else 23) for i in (4, 5, 6))
    assert len(hour) == len(minute) == len(second) == 1, "one time a day"
    at = dt.time(hour.pop(), minute.pop(), second.pop())
    found, day_ = [], start.date()
    while len(found) < count:
        day_ += dt.timedelta(days=1)
        if day_.year in year and day_.month in month and day_.day in day:
            found.append(dt.datetime.combine(day_, at))
    return found


def test_the_scan_runs_daily_the_packet_quarterly_after_the_scan_and_the_backup_before_it():
    timer = {p.name: one(read_unit(p), "Timer", "OnCalendar") for p in unit_files(".timer")}
    start = dt.datetime(2026, 12, 30)
    scans = calendar_times(timer["auditbook-scan.timer"], start, 5)
    assert [t.date() for t in scans] == [dt.date(2026, 12, 31) + dt.timedelta(days=i) for i in range(5)]
    packets = calendar_times(timer["auditbook-packet.timer"], start, 5)
    assert [(t.year, t.month, t.day) for t in packets] == [(2027, 1, 1), (2027, 4, 1), (2027, 7, 1),
                                                           (2027, 10, 1), (2028, 1, 1)]
    backup = calendar_times(timer["auditbook-backup.timer"], start, 1)[0]
    assert backup.time() < scans[0].time() < packets[0].time()
    with pytest.raises(AssertionError):
        calendar_times("*-13-01 06:00:00 UTC", start, 1)
    with pytest.raises(AssertionError):
        calendar_times("quarterly", start, 1)


# -- Kubernetes -------------------------------------------------------------------------------------------

def test_every_manifest_names_its_kind_and_namespace():
    seen = set()
    for path, doc in manifests():
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), path.name
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "auditbook", f"{path.name}: {doc['metadata']['name']}"
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"{key} twice"
        seen.add(key)
    assert not [k for k in seen if k[0] == "Secret"], "Secrets are created out of band, never in deploy/"
    assert {("CronJob", "auditbook-scan"), ("CronJob", "auditbook-packet"), ("Deployment", "auditbook-watch"),
            ("Deployment", "auditbook-control-room"), ("Service", "auditbook-control-room")} <= seen


def cron_field(text: str, low: int, high: int) -> set[int]:
    """One field of a 5-field cron schedule: *, N, N-M, lists of them, and /STEP."""
    found: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", part)
        assert m, f"cron field {text!r}"
        first, last = (low, high) if m[1] == "*" else (int(m[1].split("-")[0]), int(m[1].split("-")[-1]))
        assert low <= first <= last <= high, f"cron field {text!r} outside {low}-{high}"
        found |= set(range(first, last + 1, int(m[2] or 1)))
    return found


def cron_fields(schedule: str) -> list[set[int]]:
    fields = schedule.split()
    assert len(fields) == 5, f"{schedule!r} is not a 5-field cron schedule"
    return [cron_field(f, lo, hi) for f, (lo, hi) in zip(fields, [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)])]


def test_cronjobs_run_daily_and_quarterly_in_utc_and_never_overlap():
    jobs = {d["metadata"]["name"]: d["spec"] for _, d in manifests() if d["kind"] == "CronJob"}
    for name, spec in jobs.items():
        cron_fields(spec["schedule"])
        assert spec["timeZone"] == "Etc/UTC" and spec["concurrencyPolicy"] == "Forbid", name
    minute, hour, day, month, weekday = cron_fields(jobs["auditbook-scan"]["schedule"])
    assert (len(minute), len(hour), day, month, weekday) == (1, 1, set(range(1, 32)), set(range(1, 13)), set(range(7)))
    assert cron_fields(jobs["auditbook-packet"]["schedule"])[2:4] == [{1}, {1, 4, 7, 10}]
    assert jobs["auditbook-scan-dask"]["suspend"] is True  # one daily scan, not two
    for bad in ("0 5 * *", "61 5 * * *", "0 5 * 13 *", "@daily"):
        with pytest.raises(AssertionError):
            cron_fields(bad)


@pytest.mark.parametrize("name,spec", pod_specs(), ids=[n for n, _ in pod_specs()])
def test_every_container_runs_as_non_root_on_a_read_only_root(name, spec):
    pod = spec.get("securityContext", {})
    assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}
    for container in spec["containers"]:
        own = container.get("securityContext", {})
        assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, container["name"]
        assert own.get("runAsUser", pod.get("runAsUser", 1)) != 0, container["name"]
        assert own.get("readOnlyRootFilesystem") is True, container["name"]
        assert own.get("allowPrivilegeEscalation") is False and own.get("capabilities") == {"drop": ["ALL"]}
        assert not own.get("privileged"), container["name"]


def test_workloads_reach_aws_through_irsa_service_accounts():
    accounts = {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == "ServiceAccount"}
    for name, spec in pod_specs():
        if name == "auditbook-dask-scheduler":
            assert "serviceAccountName" not in spec and spec["automountServiceAccountToken"] is False
            continue
        role = accounts[spec["serviceAccountName"]]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", role), name


# -- secrets -------------------------------------------------------------------------------------------

def container_env(spec: dict) -> list[dict]:
    return [e for c in spec["containers"] for e in c.get("env", [])]


def secret_mounts(spec: dict) -> tuple[str, ...]:
    """The paths where a pod mounts a Secret's files (a value naming a file there names a secret, it is not one)."""
    secret_volumes = {v["name"] for v in spec.get("volumes", []) if "secret" in v}
    return tuple(m["mountPath"].rstrip("/") + "/" for c in spec["containers"] for m in c.get("volumeMounts", [])
                 if m["name"] in secret_volumes)


def test_no_secret_value_is_written_in_a_manifest():
    for name, spec in pod_specs():
        mounted = secret_mounts(spec)
        for entry in container_env(spec):
            if SECRET_NAME.search(entry["name"]):
                if mounted and str(entry.get("value", "")).startswith(mounted):
                    continue  # the path of a file of a mounted Secret
                assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], f"{name}: {entry['name']}"
    for _, doc in manifests():
        if doc["kind"] == "ConfigMap":
            assert not [k for k in doc["data"] if SECRET_NAME.search(k)], doc["metadata"]["name"]


def test_no_password_in_any_deploy_file():
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        text = path.read_text()
        assert not PASSWORD_IN_URL.search(text.replace("auditbook:PASSWORD@", "")), path.name
        assert not re.search(r"(?im)^\s*(client_secret|cookie_secret)\s*=", text), path.name
        assert not re.search(r"(?i)aws_(secret_access_key|session_token)\s*[=:]", text), path.name
    assert "AUDITBOOK_DB" not in " ".join(v for p in unit_files(".service")
                                          for v in values(read_unit(p), "Service", "Environment"))
    assert not PASSWORD_IN_URL.search(env_file(ENV_EXAMPLE)["AUDITBOOK_DB"])
    assert PASSWORD_IN_URL.search("postgresql://auditbook:hunter2@db/auditbook")  # the pattern finds one


def test_every_auditbook_variable_set_is_one_auditbook_or_a_script_reads():
    import typer

    from auditbook.cli.main import registered_app

    def envvars(command) -> set[str]:
        own = {p.envvar for p in getattr(command, "params", []) if isinstance(p.envvar, str)}
        return own.union(*(envvars(c) for c in getattr(command, "commands", {}).values()))
    read = envvars(typer.main.get_command(registered_app()))
    read |= set(re.findall(r"\$\{?(AUDITBOOK\w*)", " ".join(p.read_text() for p in SCRIPTS.iterdir())))
    read |= {n for p in unit_files(".service") for n in re.findall(r"\$\{(AUDITBOOK\w*)\}", p.read_text())}
    set_here = set(env_file(ENV_EXAMPLE))
    set_here |= {e["name"] for _, spec in pod_specs() for e in container_env(spec)}
    set_here |= {k for _, d in manifests() if d["kind"] == "ConfigMap" for k in d["data"] if k.isupper()}
    assert sorted(n for n in set_here if n.startswith("AUDITBOOK") and n not in read) == []


# -- the control room behind the proxy ------------------------------------------------------------------

def proxy_config() -> dict:
    return tomllib.loads((PROXY / "oauth2-proxy.cfg").read_text())


def control_room_lines() -> list[tuple[str, dict]]:
    return [(where, parse_auditbook(argv).params) for where, argv in COMMAND_LINES if argv[0] == "app"]


def test_the_control_room_listens_only_where_the_proxy_reaches_it():
    """Loopback only (the host, or the pod's own network namespace), on the port the proxy forwards to."""
    upstream = urlsplit(proxy_config()["upstreams"][0])
    lines = control_room_lines()
    assert len(lines) == 2
    for where, params in lines:
        assert ipaddress.ip_address(params["host"]).is_loopback, where
        assert (upstream.hostname, upstream.port) == (params["host"], params["port"]), where


def test_the_proxy_passes_host_and_origin_and_no_identity():
    """The app's guard compares Host with its public host and Origin with Host: the proxy keeps the
    browser's; the app takes no identity from a header, so the proxy sends none."""
    cfg = proxy_config()
    assert cfg["pass_host_header"] is True and cfg["proxy_websockets"] is True
    for key in ("pass_user_headers", "pass_access_token", "pass_authorization_header", "set_xauthrequest",
                "pass_basic_auth"):
        assert cfg[key] is False, key
    assert cfg["cookie_secure"] is True and cfg["cookie_httponly"] is True
    assert cfg["provider"] == "oidc" and cfg["oidc_issuer_url"].startswith("https://")
    # oauth2-proxy serves everything under its prefix itself: it must not take the control room's own
    # sign-in callback ([auth] redirect_uri = https://HOST/oauth2callback, docs/control-room.md)
    assert not "/oauth2callback".startswith(cfg["proxy_prefix"])
    redirect = urlsplit(cfg["redirect_url"])
    assert redirect.scheme == "https" and redirect.path == cfg["proxy_prefix"] + "/callback"


def test_one_public_host_everywhere():
    """The name users type: the proxy's redirect, nginx's server_name, the Ingress and --public-host."""
    host = urlsplit(proxy_config()["redirect_url"]).hostname
    nginx = (PROXY / "nginx.conf").read_text()
    assert set(re.findall(r"server_name\s+([^;]+);", nginx)) == {host}
    ingress = [d for _, d in manifests() if d["kind"] == "Ingress"]
    assert [r["host"] for d in ingress for r in d["spec"]["rules"]] == [host]
    assert [h for d in ingress for t in d["spec"]["tls"] for h in t["hosts"]] == [host]
    assert {params["public_host"] for _, params in control_room_lines()} == {host}


def test_nginx_forwards_to_the_proxy_with_the_browsers_host_and_websockets():
    nginx = (PROXY / "nginx.conf").read_text()
    address = proxy_config()["http_address"]
    assert re.findall(r"proxy_pass\s+([^;]+);", nginx) == [f"http://{address}"]
    assert re.search(r"proxy_set_header\s+Host\s+\$http_host;", nginx)  # the port too: Origin carries it
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", nginx)
    assert re.search(r"listen\s+443\s+ssl;", nginx) and "return 301 https://" in nginx


def test_the_kubernetes_proxy_is_the_only_way_in():
    deployment = next(d for _, d in manifests() if d["kind"] == "Deployment"
                      and d["metadata"]["name"] == "auditbook-control-room")
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert "ports" not in containers["control-room"]
    assert [p["containerPort"] for p in containers["oauth2-proxy"]["ports"]] == [4180]
    assert "--http-address=0.0.0.0:4180" in containers["oauth2-proxy"]["args"]
    service = next(d for _, d in manifests() if d["kind"] == "Service" and d["metadata"]["name"] == "auditbook-control-room")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["proxy"]
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in containers["oauth2-proxy"]["env"]}
    assert secrets == {"OAUTH2_PROXY_CLIENT_SECRET": "auditbook-oidc", "OAUTH2_PROXY_COOKIE_SECRET": "auditbook-oidc"}


# -- kustomize and the settings files ---------------------------------------------------------------------

def test_kustomization_applies_every_manifest_and_the_files_it_generates_from_exist():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(f"kubernetes/{p.name}" for p in KUBERNETES.glob("*.yaml"))
    generated = {g["name"]: g["files"] for g in kustomization["configMapGenerator"]}
    assert all((DEPLOY / f).is_file() for files in generated.values() for f in files)
    mounted = {v["configMap"]["name"] for _, spec in pod_specs() for v in spec.get("volumes", []) if "configMap" in v}
    configmaps = {d["metadata"]["name"] for _, d in manifests() if d["kind"] == "ConfigMap"}
    assert mounted <= configmaps | set(generated)


def configmap_file(name: str, key: str) -> str:
    return next(d["data"][key] for _, d in manifests() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)


def test_the_notify_and_rate_limit_files_are_valid(tmp_path):
    from auditbook.collect.ratelimit import load_rate_limits
    from auditbook.monitor.notify import load_channels
    notify = tmp_path / "notify.yml"
    notify.write_text(configmap_file("auditbook-notify", "notify.yml"))
    assert [c.name for c in load_channels(notify)] == ["soc-slack", "oncall"]
    limits = tmp_path / "rate-limits.yaml"
    limits.write_text(configmap_file("auditbook-rate-limits", "rate-limits.yaml"))
    assert load_rate_limits(limits).ceiling("111122223333", "iam") == 5.0
    [watch] = [s for n, s in pod_specs() if n == "auditbook-watch"]
    assert {e["secretRef"]["name"] for e in watch["containers"][0]["envFrom"] if "secretRef" in e} == {"auditbook-notify"}
