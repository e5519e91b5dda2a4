"""Free TCP ports on loopback for the services the tests start."""

import socket
from contextlib import ExitStack


def free_ports(count: int) -> list[int]:
    """Return `count` distinct ports on 127.0.0.1 that were free a moment ago.

    The sockets are held open together so the kernel cannot hand out the same port twice.
    """
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


def accepts_connections(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False
