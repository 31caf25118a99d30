"""A real PostgreSQL server for the tests: initdb in a temporary folder and postgres on 127.0.0.1 at a
free port, run as the `postgres` user when the tests run as root (Debian's postgresql package,
installed by .ci/run). Each test gets a database of its own."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid


class PostgresServer:
    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
        self.bin = os.path.dirname(found[-1])
        self.dir = tempfile.mkdtemp(prefix="auditbook-pg-")
        from auditbook.demo.run import free_port
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args):
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True)

    def start(self) -> "PostgresServer":
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        data = os.path.join(self.dir, "data")
        self._run(f"{self.bin}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(f"{self.bin}/pg_ctl", "-D", data, "-l", os.path.join(self.dir, "log"), "-w", "-t", "60", "start",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off")
        return self

    def stop(self) -> None:
        try:
            self._run(f"{self.bin}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def database(self) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        import psycopg
        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"
