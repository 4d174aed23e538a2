"""A local SMTP receiver for tests: a real socket speaking enough SMTP for
Django's SMTP backend, keeping every message it accepts.

``refuse`` makes it answer 451 to the next N messages (a transient failure).
"""

from __future__ import annotations

import email
import socketserver
import threading
from email import policy
from email.message import Message


class _Handler(socketserver.StreamRequestHandler):
    def _say(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self) -> None:
        server: SMTPReceiver = self.server.receiver  # type: ignore[attr-defined]
        self._say("220 localhost test SMTP")
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            command = raw.decode(errors="replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._say("250 localhost")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self._say("250 OK")
            elif verb == "DATA":
                self._say("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    line = self.rfile.readline()
                    if line in (b".\r\n", b".\n", b""):
                        break
                    lines.append(line[1:] if line.startswith(b"..") else line)
                with server.lock:
                    if server.refuse > 0:
                        server.refuse -= 1
                        self._say("451 Try again later")
                        continue
                    server.messages.append(
                        email.message_from_bytes(b"".join(lines), policy=policy.default)
                    )
                self._say("250 Queued")
            elif verb == "QUIT":
                self._say("221 Bye")
                return
            else:
                self._say("500 What?")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SMTPReceiver:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse = 0
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SMTPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
