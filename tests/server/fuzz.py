"""``make fuzz``: a long randomized schemathesis run of the whole API, on SQLite and PostgreSQL.

    python -m tests.server.fuzz                 # 600 s in all (MLWATCH_FUZZ_SECONDS to change)
    MLWATCH_FUZZ_SECONDS=120 python -m tests.server.fuzz
    MLWATCH_FUZZ_BACKENDS=postgresql MLWATCH_FUZZ_LOGS=/tmp/fuzz-logs python -m tests.server.fuzz

For each backend it starts a real server on an empty store with one registered service,
then runs ``st run`` with every phase (examples, coverage, fuzzing, stateful) once per role
(admin gets most of the time: it reaches every handler), checking ``not_a_server_error``.
It prints operations, requests, 5xx and requests left unanswered per backend, and exits
non-zero on any of either. The
derandomized, short version that ``make test`` runs is ``tests/server/test_fuzz.py``.
Each server's output (its log, with the traceback of every 500) is kept in
``MLWATCH_FUZZ_LOGS`` (default: a fresh temporary folder), named at the end, and the
tracebacks found there are printed with the summary.
PostgreSQL is at ``MLWATCH_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import create_engine, text

from monitor.store import Store
from tests.conftest import postgres_base_url, start_server

SHARES = {"admin": 0.55, "operator": 0.15, "viewer": 0.15, "ingest": 0.15}
"""Each role's share of a backend's time."""
PHASES = "examples,coverage,fuzzing,stateful"
_NO_ANSWER = re.compile(r"Timeout|Connection|Disconnected|Reset|Protocol")
"""The errors schemathesis reports for a request the server did not answer."""


@dataclass
class Tally:
    """What one backend's runs did."""

    operations: set[str] = field(default_factory=set)
    requests: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    server_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Requests that got no answer (a timeout, a dropped connection), which a 5xx count would hide."""
    log: Path | None = None
    """The server's output."""

    def line(self, backend: str) -> str:
        """One line of the summary."""
        counts = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{backend}: {len(self.operations)} operations, {self.requests} requests, "
            f"5xx = {len(self.server_errors)}, no answer = {len(self.errors)} ({counts})"
        )


def main() -> int:
    """Fuzz each backend for half of ``MLWATCH_FUZZ_SECONDS``; 1 if any answered a 5xx or not at all."""
    seconds = float(os.environ.get("MLWATCH_FUZZ_SECONDS", "600"))
    backends = os.environ.get("MLWATCH_FUZZ_BACKENDS", "sqlite,postgresql").split(",")
    logs = Path(os.environ.get("MLWATCH_FUZZ_LOGS") or tempfile.mkdtemp(prefix="mlwatch-fuzz-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    tallies = {backend: fuzz_backend(backend, seconds / len(backends), logs) for backend in backends}
    for backend, tally in tallies.items():
        print(tally.line(backend))
        for error in [*tally.server_errors, *tally.errors][:20]:
            print(f"  {error}")
        if tally.log is not None:
            print(f"  server log: {tally.log}")
            for traceback in _tracebacks(tally.log)[:10]:
                print("  " + traceback.replace("\n", "\n  "))
    return 1 if any(t.server_errors or t.errors for t in tallies.values()) else 0


def fuzz_backend(backend: str, seconds: float, logs: Path) -> Tally:
    """Start a server on a fresh store of ``backend`` and fuzz it with each role in turn."""
    tally = Tally(log=logs / f"server-{backend}.log")
    with tempfile.TemporaryDirectory(prefix=f"mlwatch-fuzz-{backend}-") as tmp:
        workdir = Path(tmp)
        with _store_url(backend, workdir) as url:
            store = Store.open(url, migrate=True)
            server = start_server(workdir, url)
            # Its output is a pipe: read it all along, or a full pipe blocks the server's next write.
            assert server.process.stdout is not None
            keeper = threading.Thread(target=_keep, args=(server.process.stdout, tally.log), daemon=True)
            keeper.start()
            try:
                _register(server.url, server.token)
                for role, share in SHARES.items():
                    # The admin runs revoke tokens (DELETE /v1/tokens/{id}), so each role gets a
                    # fresh token just before its run, and admin the bootstrap one, which stays.
                    token = server.token if role == "admin" else store.create_token(role)
                    report = workdir / f"{role}.ndjson"
                    _run(server.url, token, max(1, int(seconds * share)), report)
                    _count(report, tally)
            finally:
                server.stop()
                keeper.join(timeout=10)
                store.close()
    return tally


def _keep(stream: IO[bytes], path: Path) -> None:
    with path.open("wb") as out:
        for line in iter(stream.readline, b""):
            out.write(line)
            out.flush()


def _tracebacks(log: Path) -> list[str]:
    """Each traceback in the server's log, from its first line to the exception's line."""
    found: list[str] = []
    current: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Traceback (most recent call last)"):
            current = [line]
        elif current:
            current.append(line)
            if line and not line[0].isspace() and not line.startswith(("Traceback", "During handling", "The above")):
                found.append("\n".join(current[-40:]))
                current = []
    return found


@contextmanager
def _store_url(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'fuzz.db'}"
        return
    base = postgres_base_url()
    schema = f"fuzz_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _register(url: str, token: str) -> None:
    features = [{"name": "age"}, {"name": "city", "type": "categorical"}, {"name": "note", "type": "text"}]
    body = {"name": "credit", "features": features}
    httpx.post(f"{url}/v1/services", json=body, headers={"Authorization": f"Bearer {token}"}).raise_for_status()


def _run(url: str, token: str, seconds: int, report: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{url}/openapi.json",
        f"--phases={PHASES}",
        "--checks=not_a_server_error",
        f"--max-time={seconds}",
        "--request-timeout=120",  # the first check imports Evidently
        "--suppress-health-check=all",
        "--workers=2",
        "--report=ndjson",
        f"--report-ndjson-path={report}",
        "--header",
        f"Authorization: Bearer {token}",
    ]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, timeout=seconds * 3 + 300)


def _count(report: Path, tally: Tally) -> None:
    """Add the requests and answers recorded in a schemathesis NDJSON report to ``tally``."""
    if not report.exists():
        tally.server_errors.append(f"{report.name}: schemathesis wrote no report")
        return
    for line in report.read_text().splitlines():
        found = json.loads(line)
        error = found.get("NonFatalError")
        if error and _NO_ANSWER.search(error["value"]["type"]):  # not schemathesis's own errors
            tally.errors.append(f"{error.get('label')}: {error['value']['type']}: {error['value']['message'][:200]}")
        event = found.get("ScenarioFinished")
        if not event:
            continue
        if event["phase"] != "stateful":  # stateful scenarios are labelled by their chain of links
            tally.operations.add(event["recorder"]["label"])
        for interaction in event["recorder"].get("interactions", {}).values():
            response = interaction.get("response")
            if not response:
                continue
            tally.requests += 1
            tally.statuses[response["status_code"]] += 1
            if response["status_code"] >= 500:
                request = interaction["request"]
                tally.server_errors.append(f"{response['status_code']} {request['method']} {request['uri'][:200]}")


if __name__ == "__main__":
    sys.exit(main())
