"""Helpers for the introspect-data tests (imported by the tests and their conftest)."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

from tests.integration.connectors.conftest import mysql_admin, pg_admin


def pg_sessions(application_name: str) -> int:
    with pg_admin() as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    return int(row[0]) if row else 0


def mysql_sessions(user: str) -> int:
    with mysql_admin() as admin, admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.processlist WHERE user = %s",
                    (user,))
        row = cur.fetchone()
    return int(row[0]) if row else 0


class FlakyProxy:
    """Forwards TCP to ``target`` but slams the first ``drop`` connections shut: the
    client sees a connection that dies during the handshake (a transient network error)."""

    def __init__(self, target: tuple[str, int], drop: int) -> None:
        self.target, self.drop, self.accepted = target, drop, 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> FlakyProxy:
        self._thread.start()
        return self

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.accepted <= self.drop:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


