"""Starting and stopping the demo's processes: each in its own session, so that Ctrl-C
reaches only the demo, which then stops every process group it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Process:
    """A child process of the demo and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class Stack:
    """The demo's child processes, started in order and stopped in reverse."""

    workdir: Path
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Process:
        """Run ``mlwatch <args>`` with output to ``<home>/logs/<name>.log``."""
        log = self.workdir / ".mlwatch" / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "monitor", *args],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def wait_http(self, process: Process, url: str, timeout: float = 90.0) -> None:
        """Wait for ``url`` to answer; raise with the log's tail if the process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited ({process.popen.returncode}):\n{_tail(process.log)}")
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{process.name} did not answer {url} within {timeout:.0f}s:\n{_tail(process.log)}")

    def restart(self, name: str, *args: str) -> Process:
        """Stop the process ``name`` and start ``mlwatch <args>`` in its place (a configuration change)."""
        for process in [p for p in self.processes if p.name == name]:
            _signal_group(process.popen, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(10.0)
            _signal_group(process.popen, signal.SIGKILL)
            process.popen.wait()
            self.processes.remove(process)
        return self.start(name, *args)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every process group (newest first), then SIGKILL what is left."""
        for process in reversed(self.processes):
            _signal_group(process.popen, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in reversed(self.processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(max(0.1, deadline - time.monotonic()))
            _signal_group(process.popen, signal.SIGKILL)  # also reaps children left in the group
            process.popen.wait()
        self.processes.clear()


def _signal_group(popen: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(popen.pid, sig)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
