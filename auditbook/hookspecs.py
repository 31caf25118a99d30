"""auditbook's extension seams, declared in one place (in the manner of Datasette's hookspecs.py).

Each seam is a pluggy hook with a one-line contract. The built-ins are registered through the same
hooks a third party uses (auditbook/plugins.py lists them); a third-party package adds a module that
implements some of these hooks and declares it under the `auditbook` entry-point group:

    [project.entry-points.auditbook]
    my_plugin = "my_package.auditbook_plugin"

and decorates its functions with `auditbook.hookspecs.hookimpl`. docs/architecture.md says where to
add a check, a collector, an export format, a notification channel or a runbook.
"""
from __future__ import annotations

import pluggy

PROJECT = "auditbook"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def resource_types():
    """Collectors: a list of collect.spec.ResourceType, each a declarative AWS resource type."""


@hookspec
def check_functions():
    """Check functions: {name: fn(record: dict) -> bool} that controls.yaml names with `function:`."""


@hookspec
def export_formats():
    """Export formats: a list of report.exports.formats.ExportFormat (name, help, render(view))."""


@hookspec
def notification_channels():
    """Notification channels: a list of monitor.channels.ChannelKind (kind, requires, alert, incident)."""


@hookspec
def runbooks():
    """Containment runbooks: a list of monitor.runbooks.Runbook (name, title, parameters, plan)."""


@hookspec
def run_stored(engine, run_id: int, at):
    """Event: a scan's run `run_id` (started `at`) has been stored in the store `engine`."""
