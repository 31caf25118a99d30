"""`auditbook plugins`: what every extension seam holds (auditbook/hookspecs.py), built-in or added."""
from __future__ import annotations

from rich.markup import escape

from auditbook.cli.common import app, out
from auditbook.plugins import plugin_modules, registered


@app.command()
def plugins():
    """List the registered resource types, check functions, export formats, notification channels
    and runbooks, and the plugin modules that provide them."""
    for seam, names in registered().items():
        out.print(f"{seam} ({len(names)}): {escape(', '.join(names)) or '—'}")
    out.print(f"plugin modules: {escape(', '.join(plugin_modules()))}")
