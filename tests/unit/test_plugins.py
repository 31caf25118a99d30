"""The extension seams (auditbook/hookspecs.py): a plugin registers through the same hooks as the
built-ins, what it adds is listed and used, and a name declared twice is an error, never an override."""
import types

import pytest

from auditbook import plugins
from auditbook.hookspecs import hookimpl
from auditbook.report.exports.formats import ExportFormat


def _plugin(**hooks) -> types.ModuleType:
    module = types.ModuleType("a_third_party_plugin")
    for name, fn in hooks.items():
        setattr(module, name, hookimpl(fn))
    return module


@pytest.fixture
def registered_plugin():
    made = []

    def register(**hooks):
        module = _plugin(**hooks)
        plugins.register(module, name=f"plugin-{len(made)}")
        made.append(module)
        return module
    yield register
    for module in made:
        plugins.unregister(module)


def test_the_built_ins_come_through_the_seams():
    seen = plugins.registered()
    assert {"asff", "ocsf", "oscal"} <= set(seen["export_formats"])
    assert {"slack", "pagerduty", "jira"} <= set(seen["notification_channels"])
    assert {"quarantine-instance", "deactivate-access-key", "disable-console-login"} <= set(seen["runbooks"])
    assert "aws.s3.bucket" in seen["resource_types"]
    assert {"collectors", "auditbook.report.exports.formats", "auditbook.monitor.alerts"} <= set(plugins.plugin_modules())


def test_a_plugin_adds_a_check_function_and_an_export_format_and_they_are_listed(registered_plugin):
    fmt = ExportFormat("csv-lite", "a plugin's format", lambda view: [])
    registered_plugin(check_functions=lambda: {"always_met": lambda record: True},
                      export_formats=lambda: [fmt])
    seen = plugins.registered()
    assert "always_met" in seen["check_functions"] and "csv-lite" in seen["export_formats"]
    assert plugins.check_functions()["always_met"]({}) is True
    assert plugins.export_formats()["csv-lite"] is fmt


def test_a_name_declared_twice_is_an_error_naming_it(registered_plugin):
    registered_plugin(export_formats=lambda: [ExportFormat("ocsf", "an impostor", lambda view: [])])
    with pytest.raises(plugins.PluginConflict, match="export_formats: 'ocsf' is declared twice"):
        plugins.export_formats()


def test_unregistering_removes_what_a_plugin_added(registered_plugin):
    module = registered_plugin(check_functions=lambda: {"gone_soon": lambda record: False})
    assert "gone_soon" in plugins.check_functions()
    plugins.unregister(module)
    assert "gone_soon" not in plugins.check_functions()
    plugins.register(module, name="again")  # the fixture unregisters it


def test_a_format_that_takes_a_plain_output_name_is_refused_not_shadowed(registered_plugin):
    from auditbook.cli.findings import _format_choices
    assert _format_choices()[:3] == ("table", "json", "csv")
    registered_plugin(export_formats=lambda: [ExportFormat("json", "a plugin's json", lambda view: [])])
    with pytest.raises(plugins.PluginConflict, match="'json' is already an output of `auditbook findings`"):
        _format_choices()
