"""The load generator: a separate process that sends a list of HTTP requests with N connections at once.

Reads a JSON job on standard input: {"concurrency": N, "requests": [{"method", "url", "json" | "body",
"headers", "at"}, ...]} and writes one JSON list on standard output: [status, start, end] per request, in the
order given, times in seconds from the start of the run. A request with "at" (seconds from the start; give them
in order) is not sent before then: arrivals on a schedule rather than as fast as the answers come back.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def run(job: dict) -> list[list[float]]:
    requests = job["requests"]
    results: list[list[float]] = [[0, 0.0, 0.0]] * len(requests)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        queue.put_nowait(index)
    # Idle connections are dropped before gunicorn's `keepalive` (5 s) would close them under a request being sent,
    # as a proxy in front of gunicorn must do too.
    connector = aiohttp.TCPConnector(limit=job["concurrency"], force_close=False, keepalive_timeout=2)
    timeout = aiohttp.ClientTimeout(total=job.get("timeout", 120))
    started = time.perf_counter()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                spec = requests[index]
                if "at" in spec:
                    await asyncio.sleep(spec["at"] - (time.perf_counter() - started))
                begin = time.perf_counter() - started
                try:
                    async with session.request(
                        spec.get("method", "GET"),
                        spec["url"],
                        json=spec.get("json"),
                        data=spec.get("body"),
                        headers=spec.get("headers"),
                        allow_redirects=False,
                    ) as response:
                        await response.read()
                        status = response.status
                except (TimeoutError, aiohttp.ClientError):
                    status = 0
                results[index] = [status, begin, time.perf_counter() - started]

        await asyncio.gather(*(worker() for _ in range(job["concurrency"])))
    return results


def main() -> None:
    job = json.load(sys.stdin)
    json.dump(asyncio.run(run(job)), sys.stdout)


if __name__ == "__main__":
    main()
