"""Frames on a local socket between write processes: a request id and one pickled value.
Only processes of the same user reach the sockets (their directory is private to it),
so unpickling what arrives is no wider a trust than the processes already share."""

from __future__ import annotations

import asyncio
import pickle
import struct

HEADER = struct.Struct(">QI")  # request id, length of the pickled value


def frame(request_id: int, value: object) -> bytes:
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(request_id, len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, object]:
    """The next frame; IncompleteReadError at the end of the stream."""
    request_id, length = HEADER.unpack(await reader.readexactly(HEADER.size))
    return request_id, pickle.loads(await reader.readexactly(length))
