"""The language server's stdin read on its event loop.

pygls reads stdin on a thread pool: a thread hop per header line and per body, three per
message, each a cross-thread wake-up. After a pause in typing, those wake-ups are what a
save waits for first. Here the loop itself watches the pipe (one wake-up per arrival)."""

from __future__ import annotations

import asyncio
from typing import BinaryIO


class PipeReader:
    """pygls's reader interface (`readline`, `readexactly`; b"" at the end of input) over an
    asyncio stream."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream

    async def readline(self) -> bytes:
        return await self.stream.readline()

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self.stream.readexactly(n)
        except asyncio.IncompleteReadError:
            return b""


async def pipe_reader(stdin: BinaryIO) -> PipeReader | None:
    """A reader on the running loop, or None when stdin is not a pipe or socket (a file,
    say), which only pygls's threaded reader can read."""
    stream = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), stdin)
    except ValueError:
        return None
    return PipeReader(stream)
