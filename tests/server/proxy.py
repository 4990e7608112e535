"""A TCP proxy on 127.0.0.1 that cuts a connection part way, once each way: transfers through ``mloop server``
must survive it by resuming, not by starting over."""

from __future__ import annotations

import socket
import threading


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the server; the first connection to carry ``cut_after`` bytes in a direction
    is cut there (once per direction), as a flaky network or a restarting load balancer would."""

    def __init__(self, target: str, cut_after: int) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.cut_after = cut_after
        self.sent = {"up": 0, "down": 0}  # bytes forwarded each way, over every connection
        self.cuts = {"up": 0, "down": 0}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for src, dst, way in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(target=self._pump, args=(src, dst, way, (client, upstream)), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str, both: tuple[socket.socket, ...]) -> None:
        carried = 0
        try:
            while data := src.recv(1 << 16):
                with self._lock:
                    cut = self.cuts[way] == 0 and carried + len(data) > self.cut_after
                    if cut:
                        self.cuts[way] += 1
                        data = data[:self.cut_after - carried]
                    self.sent[way] += len(data)
                dst.sendall(data)
                carried += len(data)
                if cut:
                    break
        except OSError:
            pass
        for sock in both:  # a cut (or either end closing) ends the connection both ways
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self._listener.close()
