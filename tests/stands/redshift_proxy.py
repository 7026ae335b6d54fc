"""A TCP proxy that lets redshift-connector talk to a plain PostgreSQL server.

redshift-connector fails against PostgreSQL 15 in two ways this proxy fixes (the third,
its SCRAM code, is avoided by a trust or md5 test user):

- it sends Redshift-only startup parameters, which PostgreSQL rejects: they are dropped;
- it cannot parse Debian's ``server_version`` (``15.18 (Debian ...)``): the
  ParameterStatus message is rewritten to ``8.0.2``, what Redshift reports.

Everything else is piped unchanged. Run ``python tests/stands/redshift_proxy.py
--listen 127.0.0.1:15439 --upstream 127.0.0.1:5432`` or use :class:`RedshiftProxy` in a
background thread from tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import threading

# Startup parameters PostgreSQL accepts; Redshift's extras are dropped.
_KEEP_PARAMS = {b"user", b"database", b"options", b"application_name", b"client_encoding",
                b"replication", b"DateStyle", b"TimeZone", b"extra_float_digits"}
_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
REDSHIFT_VERSION = b"8.0.2"


def rewrite_startup(body: bytes) -> bytes:
    """Filter a StartupMessage body (protocol version + key/value pairs)."""
    version, rest = body[:4], body[4:]
    parts = rest.split(b"\x00")
    pairs = [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2) if parts[i]]
    kept = b"".join(k + b"\x00" + v + b"\x00" for k, v in pairs if k in _KEEP_PARAMS)
    return version + kept + b"\x00"


def rewrite_parameter_status(payload: bytes) -> bytes:
    name, _, _ = payload.partition(b"\x00")
    if name == b"server_version":
        return name + b"\x00" + REDSHIFT_VERSION + b"\x00"
    return payload


async def _pipe_server_messages(up: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
    while True:
        kind = await up.readexactly(1)
        length = struct.unpack("!i", await up.readexactly(4))[0]
        payload = await up.readexactly(length - 4)
        if kind == b"S":
            payload = rewrite_parameter_status(payload)
        client.write(kind + struct.pack("!i", len(payload) + 4) + payload)
        await client.drain()


async def _pipe_raw(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    while data := await src.read(65536):
        dst.write(data)
        await dst.drain()


async def _handle(
    client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, upstream: tuple[str, int]
) -> None:
    up_w: asyncio.StreamWriter | None = None
    try:
        while True:  # startup phase: SSL/GSS requests, then the StartupMessage
            header = await client_r.readexactly(8)
            length, code = struct.unpack("!ii", header)
            if code in (_SSL_REQUEST, _GSS_REQUEST):
                client_w.write(b"N")
                await client_w.drain()
                continue
            body = header[4:] + await client_r.readexactly(length - 8)
            break
        up_r, up_w = await asyncio.open_connection(*upstream)
        startup = rewrite_startup(body)
        up_w.write(struct.pack("!i", len(startup) + 4) + startup)
        await up_w.drain()
        # When either side hangs up, stop the other direction too.
        tasks = {asyncio.ensure_future(_pipe_server_messages(up_r, client_w)),
                 asyncio.ensure_future(_pipe_raw(client_r, up_w))}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        for w in (client_w, up_w):
            if w is not None:
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()


class RedshiftProxy:
    """The proxy on its own event loop in a daemon thread; ``port`` is known after start."""

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1", port: int = 0):
        self.upstream, self.host, self.port = upstream, host, port
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> RedshiftProxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self.port = fut.result(timeout=5)
        return self

    async def _serve(self) -> int:
        self._server = await asyncio.start_server(self._track, self.host, self.port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await _handle(reader, writer, self.upstream)
        except asyncio.CancelledError:
            pass  # stop(): _handle has closed both sockets; end quietly
        finally:
            self._handlers.discard(task)

    def stop(self) -> None:
        async def _close() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            if self._server is not None:
                await self._server.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:15439")
    parser.add_argument("--upstream", default="127.0.0.1:5432")
    args = parser.parse_args()
    lhost, lport = args.listen.rsplit(":", 1)
    uhost, uport = args.upstream.rsplit(":", 1)

    async def serve() -> None:
        server = await asyncio.start_server(
            lambda r, w: _handle(r, w, (uhost, int(uport))), lhost, int(lport)
        )
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
