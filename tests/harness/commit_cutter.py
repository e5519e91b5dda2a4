"""A TCP proxy on loopback in front of the harness PostgreSQL that can lose a commit's reply.

Armed, it forwards the next statement a client sends that holds `sent` (by default an
explicit COMMIT), waits until the server's answer holds `answered` (the commit is durable
in the server by then), drops that answer and closes both sides of the connection: the
client sees its connection break with the outcome of its commit unknown, while the
transaction did commit. Everything else is relayed as it comes.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.harness.ports import free_port

COMMIT = b"COMMIT\x00"  # the query text a client sends and the tag the server answers with
# ReadyForQuery, idle: the server's last word on a statement run in autocommit, sent once
# the statement's implicit transaction has committed
READY_IDLE = b"Z\x00\x00\x00\x05I"
_CHUNK = 65536


class _Link:
    """One client connection and the server connection relayed for it."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.cutting = False
        self.answer = b""

    def close(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class CommitCutter:
    def __init__(self, target_port: int, sent: bytes = COMMIT, answered: bytes = COMMIT) -> None:
        self._target = ("127.0.0.1", target_port)
        self._sent, self._answered = sent, answered
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        self._armed = False
        self._links: list[_Link] = []
        self._stopping = False
        self.cuts = 0

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopping = True
        self._listener.close()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()

    def arm(self) -> None:
        """Lose the reply to the next such statement any connection sends."""
        with self._lock:
            self._armed = True

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            link = _Link(client, server)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._to_server, args=(link,), daemon=True).start()
            threading.Thread(target=self._to_client, args=(link,), daemon=True).start()

    def _to_server(self, link: _Link) -> None:
        tail = b""
        while data := _recv(link.client):
            with self._lock:
                if self._armed and self._sent in tail + data:
                    self._armed = False
                    link.cutting = True
            tail = data[1 - len(self._sent) :]  # too short to hold a statement already seen
            if not _send(link.server, data):
                break
        link.close()

    def _to_client(self, link: _Link) -> None:
        while data := _recv(link.server):
            if link.cutting:
                link.answer += data
                if self._answered in link.answer:  # the server has committed
                    with self._lock:
                        self.cuts += 1
                    break
                continue
            if not _send(link.client, data):
                break
        link.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(_CHUNK)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True
