"""A real webhook receiver on a loopback port that checks Standard Webhooks signatures.

Its answers are scripted per request (status codes, ``Retry-After``, stalls longer than the
sender's timeout), so tests can make it fail for a while and then recover.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from monitor.webhooks.signing import verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass(frozen=True)
class Step:
    """How to answer one request: a status, an optional Retry-After, and a stall before answering."""

    status: int = 200
    retry_after: str | None = None
    stall: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    event_id: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    answered: int

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops concurrent connects from a parallel sender
    daemon_threads = True


class Receiver:
    """``ThreadingHTTPServer`` in a thread; ``script`` queues answers, the default is 200."""

    def __init__(
        self, secret: str | None = SECRET, port: int = 0, default: Step = Step(), tls: ssl.SSLContext | None = None
    ) -> None:
        self.secret = secret
        self.default = default
        self.steps: deque[Step] = deque()
        self.policy: Callable[[], Step] | None = None
        self.received: list[Received] = []
        self.aborted = 0  # requests whose body ended before its Content-Length
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", port), self._handler())
        self.sni: list[str | None] = []  # the server names TLS clients asked for
        self.scheme = "https" if tls else "http"
        if tls:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hook"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def script(self, *steps: Step) -> None:
        """Answer the next requests with ``steps``, in order."""
        with self.lock:
            self.steps.extend(steps)

    def next_step(self) -> Step:
        with self.lock:
            if self.steps:
                return self.steps.popleft()
        return self.policy() if self.policy else self.default

    def delivered_ids(self) -> list[str]:
        """Event ids answered 2xx, in arrival order (repeats included)."""
        with self.lock:
            return [r.event_id for r in self.received if 200 <= r.answered < 300]

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise TimeoutError(f"receiver condition not met in {timeout}s; got {len(self.received)} requests")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender went away mid-request (killed): nothing was delivered
                    with receiver.lock:
                        receiver.aborted += 1
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = receiver.secret is None or verify(receiver.secret, headers, body, now=time.time())
                step = receiver.next_step()
                if step.stall:
                    time.sleep(step.stall)
                with receiver.lock:
                    receiver.received.append(Received(headers.get("webhook-id", ""), headers, body, ok, step.status))
                try:
                    self.send_response(step.status)
                    if step.retry_after:
                        self.send_header("Retry-After", step.retry_after)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up (timeout) before the answer

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


class Clock:
    """A clock tests move by hand, starting at real time so signatures stay within tolerance."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
