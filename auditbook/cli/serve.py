"""`auditbook app` (the control room), `lab` (the analyst's JupyterLab), `demo` and `version`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from auditbook import __version__
from auditbook.cli.common import CATALOG_OPT, DB_OPT, app, out


@app.command("app")
def control_room(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1 unless an identity provider is configured)."),
    port: int = typer.Option(8501, "--port"),
    local_role: str = typer.Option("admin", "--local-role",
                                   help="Role of the single local user when no identity provider is configured."),
    exceptions: Optional[Path] = typer.Option(None, "--exceptions", help="Exception register the admin page edits."),
    public_host: Optional[str] = typer.Option(None, "--public-host",
                                              help="Host name users reach the control room by (e.g. behind a proxy); "
                                                   "requests naming another host than it or a loopback name are refused."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Start the Streamlit control room on the store the CLI uses: prints the link to open (with its
    one-time-per-start token in local mode), then this process becomes the server."""
    from auditbook.web.server import serve
    serve(db, host, port, local_role=local_role, catalog=str(catalog) if catalog else None,
          exceptions=str(exceptions) if exceptions else None, public_host=public_host)


@app.command("lab")
def lab(
    port: int = typer.Option(8888, "--port", help="Port on 127.0.0.1."),
    notebooks: Optional[Path] = typer.Option(None, "--notebooks", help="Folder the lab opens (default: the "
                                             "project's notebooks/)."),
    writable: bool = typer.Option(False, "--writable", help="Hand the kernels a store they may write to "
                                  "(default: read-only)."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Start JupyterLab on 127.0.0.1 over the notebooks, the store handed to its kernels read-only
    through their environment: prints the link to open (with its one-time-per-start token), then
    this process becomes the server."""
    from auditbook.web.lab import serve_lab
    serve_lab(db, port, notebooks=notebooks, writable=writable, catalog=str(catalog) if catalog else None)


@app.command()
def demo(
    port: int = typer.Option(5055, "--port", min=0, max=65535, help="Port for the local moto server (127.0.0.1)."),
    db: Optional[str] = typer.Option("sqlite:///var/demo/auditbook.db", "--db", help="Store for the demo run."),
    keep_running: bool = typer.Option(False, "--keep-running", help="Leave the moto server running at the end."),
    packet: bool = typer.Option(True, "--packet/--no-packet",
                                help="Simulate the last quarter of daily scans and build its signed packet."),
    app_port: int = typer.Option(8501, "--app-port", min=0, max=65535, help="Port of the control room started at the end (0: do not start it)."),
):
    """Start a local moto server, build the simulated organisation, simulate a quarter of daily scans,
    scan it today, build the signed audit packet of the simulated quarter, and start the control room."""
    from auditbook.demo.run import run_demo
    run_demo(port=port, db=db, keep_running=keep_running, console=out, packet=packet, app_port=app_port or None)


@app.command()
def version():
    """Print the tool version."""
    out.print(__version__)
