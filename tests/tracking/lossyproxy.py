"""A TCP proxy in front of a server that forwards chosen requests and then hangs up instead of answering.

This is the network failure behind doubled points: the server committed the batch, the client never saw
the answer, and retried.
"""

from __future__ import annotations

import socket
import threading

from tests.conftest import free_port


class LossyProxy:
    """Forwards HTTP/1.1 to ``upstream_port``; of the requests starting with ``prefix``, the first
    ``unavailable`` are answered 503 unforwarded, and the next ``drops`` are applied but lose their answer."""

    def __init__(self, upstream_port: int, prefix: bytes, drops: int = 0, unavailable: int = 0) -> None:
        self.upstream_port = upstream_port
        self.prefix = prefix
        self.drops = drops
        self.dropped = 0
        self.unavailable = unavailable  # answer this many matching requests 503 without forwarding them
        self.refused = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            while True:
                request = _read_message(client)
                if request is None:
                    return
                if request.startswith(self.prefix) and self.refused < self.unavailable:
                    self.refused += 1
                    client.sendall(_UNAVAILABLE)
                    continue
                upstream.sendall(request)
                response = _read_message(upstream)
                if response is None:
                    return
                if request.startswith(self.prefix) and self.dropped < self.drops:
                    self.dropped += 1
                    return  # applied upstream; the client's connection closes without an answer
                client.sendall(response)


_UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"


def _read_message(sock: socket.socket) -> bytes | None:
    """One HTTP/1.1 message with a Content-Length body (what httpx sends and uvicorn answers with)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body
