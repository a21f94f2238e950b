"""Many live streams held open in a process of their own, counting the events each one receives.

The tail workload's load on the stream path. Its own module, free of Django:
the spawned process imports only this.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os

# A stream that does not open by then fails the run; it would measure nothing.
OPEN_DEADLINE = 600.0


class StreamHolder:
    """Holds many streams open in a process of its own and counts the events each one receives."""

    def __init__(self, url: str, patterns: list[str]):
        context = multiprocessing.get_context("spawn")
        self._parent, child = context.Pipe()
        self._process = context.Process(target=_hold_streams, args=(url, patterns, child), name="benchmark-streams")
        self._process.start()
        child.close()

    def __enter__(self) -> StreamHolder:
        if not self._parent.poll(OPEN_DEADLINE) or self._parent.recv() != "open":
            raise RuntimeError("the streams did not open")
        return self

    def counts(self) -> list[int]:
        self._parent.send("counts")
        return self._parent.recv()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the holding process has used so far: the clients' share of this machine."""
        with open(f"/proc/{self._process.pid}/stat") as stat:
            # The command name may hold spaces: fields start after its ")".
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc_info: object) -> None:
        self._parent.send("stop")
        self._process.join(60)
        if self._process.is_alive():
            self._process.kill()


def _hold_streams(url: str, patterns: list[str], connection) -> None:
    asyncio.run(_hold(url, patterns, connection))


async def _hold(url: str, patterns: list[str], connection) -> None:
    import aiohttp

    counts = [0] * len(patterns)
    opened = [asyncio.Event() for _ in patterns]
    marker = b"\nevent: event\n"

    async def follow(session, index: int, pattern: str) -> None:
        async with session.get(f"{url}/events/stream", params={"topic": pattern}) as response:
            response.raise_for_status()
            tail = b""
            async for chunk in response.content.iter_any():
                opened[index].set()
                data = tail + chunk
                counts[index] += data.count(marker)
                tail = data[-(len(marker) - 1) :]

    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        tasks = [asyncio.create_task(follow(session, n, pattern)) for n, pattern in enumerate(patterns)]
        await asyncio.gather(*(event.wait() for event in opened))
        connection.send("open")
        loop = asyncio.get_running_loop()
        while (request := await loop.run_in_executor(None, connection.recv)) != "stop":
            if request == "counts":
                connection.send(list(counts))
        for task in tasks:
            task.cancel()
