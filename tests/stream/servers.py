"""Servers of the chaos tests' own, on free loopback ports, which a test may stop and start again.

The shared NATS (4222) and PostgreSQL (5432) serve every engineer's tests, so a test that
restarts a server starts its own: ``nats-server -js`` with its store in a temporary
directory (messages and the durable consumer outlive a restart, as in production), and a
PostgreSQL cluster made by ``initdb`` and run by ``pg_ctl``. Where the binaries are missing
the tests skip through ``unavailable`` (fail where ``MLWATCH_REQUIRE_*=1``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import free_port, stop_process, unavailable

PG_BIN = Path("/usr/local/bin")


def _wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


class NatsServer:
    """``nats-server -js`` on a port of its own; ``restart`` keeps its port and its store."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            unavailable("nats-server is not installed (https://github.com/nats-io/nats-server)", "MLWATCH_REQUIRE_NATS")
        self.binary = binary
        self.port = free_port()
        self.store_dir = workdir / "nats"
        self.log = workdir / "nats.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its client URL."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait until it listens."""
        command = [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _wait_port(self.port, 20, "nats-server")

    def stop(self) -> None:
        """Stop it (SIGTERM: it syncs its store, as an orderly restart does)."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None


class PostgresCluster:
    """A PostgreSQL cluster of its own (``initdb``), run by ``pg_ctl`` on a free port."""

    def __init__(self) -> None:
        missing = [name for name in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / name).exists()]
        if missing:
            unavailable(f"{', '.join(missing)} not found in {PG_BIN} (install PostgreSQL)", "MLWATCH_REQUIRE_POSTGRES")
        # PostgreSQL refuses to run as root; the cluster then belongs to the postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.root = Path(tempfile.mkdtemp(prefix="mlwatch-pg-"))
        if self.as_user:
            shutil.chown(self.root, "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    @property
    def url(self) -> str:
        """The URL of its ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("start", "-o", options, "-l", str(self.root / "log"))

    def stop(self) -> None:
        """Stop it at once (``-m fast``: open sessions are ended, as in a failover)."""
        self._pg_ctl("stop", "-m", "fast")

    def remove(self) -> None:
        """Stop it where it runs and delete its files."""
        subprocess.run(
            [*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", action, *args)

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self.as_user, *command], capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
