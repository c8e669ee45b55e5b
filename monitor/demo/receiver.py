"""A local webhook receiver for the demo: verifies each signature and prints the event."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from monitor.webhooks.signing import verify


class DemoReceiver:
    """Receives mlwatch webhooks on a loopback port and keeps the verified events."""

    def __init__(self, port: int, secret: str, echo: Callable[[str], None] = print) -> None:
        self.secret = secret
        self.echo = echo
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-receiver", daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def accept(self, headers: dict[str, str], body: bytes) -> bool:
        """Keep and print an event whose signature verifies; False otherwise."""
        if not verify(self.secret, headers, body, now=time.time()):
            self.echo("  webhook  rejected: bad or missing signature")
            return False
        event = json.loads(body)
        with self._lock:
            self.events.append(event)
        self.echo(f"  webhook  {event.get('type')}: {event.get('summary') or event.get('data', {}).get('summary', '')}")
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                ok = receiver.accept({k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(204 if ok else 400)
                self.end_headers()

            def do_GET(self) -> None:
                with receiver._lock:
                    payload = json.dumps(receiver.events).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                return

        return Handler
