"""The plugin manager: the built-ins of every seam in auditbook/hookspecs.py, and third-party plugins
from the `auditbook` entry-point group, registered the same way.

A seam's built-in modules are imported when the seam is first used (a scan never imports the
notification channels), by name: this module sits at the bottom of the layers and imports nothing
above it statically. What two plugins both declare (a resource type, a function, a format, a channel
kind, a runbook name) is an error naming the name and the seam, never a silent override."""
from __future__ import annotations

import importlib
import threading
from typing import Any, Callable, Iterable, Optional

import pluggy

from auditbook import hookspecs
from auditbook.errors import UserError

ENTRY_POINT_GROUP = hookspecs.PROJECT
BUILTINS: dict[str, tuple[str, ...]] = {
    "resource_types": ("collectors",),
    "check_functions": ("auditbook.catalog.functions",),
    "export_formats": ("auditbook.report.exports.formats",),
    "notification_channels": ("auditbook.monitor.channels",),
    "runbooks": ("auditbook.monitor.runbooks",),
    "run_stored": ("auditbook.monitor.alerts",),
}

_lock = threading.RLock()  # guards the manager, the seams loaded into it and the resource types' cache
_loaded: set[str] = set()
_manager: Optional[pluggy.PluginManager] = None
_resource_types: Optional[dict] = None


class PluginConflict(UserError):
    """Two plugins declare the same name in one seam (one line, exit 2 on the command line)."""


def manager() -> pluggy.PluginManager:
    """The one plugin manager of the process, built on first use under the lock: threads (a scan's
    workers, a Dask worker's tasks) calling it at once all get the same one, which later receives the
    built-ins (a second manager would be left without them, and whoever used it would see no seams)."""
    global _manager
    built = _manager
    if built is None:
        with _lock:
            if _manager is None:
                pm = pluggy.PluginManager(hookspecs.PROJECT)
                pm.add_hookspecs(hookspecs)
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
                _manager = pm
            built = _manager
    return built


def _hook(seam: str):
    """The hook of a seam, its built-ins registered first (once)."""
    pm = manager()
    with _lock:
        if seam not in _loaded:
            for name in BUILTINS[seam]:
                module = importlib.import_module(name)
                if not pm.is_registered(module):
                    pm.register(module, name=name)
            _loaded.add(seam)
    return getattr(pm.hook, seam)


def _merged(seam: str, key: Callable[[Any], str]) -> dict[str, Any]:
    """Every plugin's answers to a list-returning seam, by name; a name declared twice is an error."""
    found: dict[str, Any] = {}
    for answer in _hook(seam)():
        for item in _items(answer):
            name = key(item)
            if name in found and found[name] is not item:
                raise PluginConflict(f"{seam}: {name!r} is declared twice")
            found[name] = item
    return found


def _items(answer) -> Iterable:
    return answer.items() if isinstance(answer, dict) else (answer or [])


def resource_types() -> dict:
    """Every declared resource type by name (collect.spec.ResourceType); worked out once, under the lock
    (so never from a manager still being loaded), until a plugin is registered or unregistered."""
    global _resource_types
    found = _resource_types
    if found is None:
        with _lock:
            if _resource_types is None:
                _resource_types = _merged("resource_types", lambda t: t.name)
            found = _resource_types
    return found


def _forget_resource_types() -> None:
    global _resource_types
    with _lock:
        _resource_types = None


def check_functions() -> dict[str, Callable[[dict], bool]]:
    """Every registered check function by name (read each time: cheap, and tests add some)."""
    return {name: fn for name, fn in _merged("check_functions", lambda pair: pair[0]).values()}


def export_formats() -> dict:
    return _merged("export_formats", lambda f: f.name)


def channel_kinds() -> dict:
    return _merged("notification_channels", lambda c: c.kind)


def runbooks() -> dict:
    return _merged("runbooks", lambda r: r.name)


def publish_run_stored(engine, run_id: int, at) -> None:
    """Tell every subscriber that a run has been stored (the scan knows nothing of who listens)."""
    _hook("run_stored")(engine=engine, run_id=run_id, at=at)


def register(module, name: str | None = None) -> None:
    """Register a plugin module by hand (what an entry point does; tests use it)."""
    with _lock:
        manager().register(module, name=name)
        _forget_resource_types()


def unregister(module) -> None:
    with _lock:
        manager().unregister(module)
        _forget_resource_types()


def registered() -> dict[str, list[str]]:
    """What each seam holds now, by name (built-ins and plugins): `auditbook plugins` lists it."""
    return {"resource_types": sorted(resource_types()), "check_functions": sorted(check_functions()),
            "export_formats": sorted(export_formats()), "notification_channels": sorted(channel_kinds()),
            "runbooks": sorted(runbooks())}


def plugin_modules() -> list[str]:
    """The modules registered with the plugin manager (built-ins loaded so far, and entry points)."""
    for seam in BUILTINS:
        _hook(seam)
    return sorted(name for name, _ in manager().list_name_plugin())
