"""Serve a WSGI app on a loopback port in a background thread (fakes, the sandbox, tests)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class Served:
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_in_thread(app, port: int = 0, host: str = "127.0.0.1") -> Served:
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"wsgi:{server.server_port}", daemon=True)
    thread.start()
    return Served(server, thread)
