"""`brokerage serve --workers N`: one engine process and N front processes (see bridge.py).

The engine process binds the listening sockets, starts the app (its engine, keys, limits and
feeds) and serves it on a Unix socket in a folder only its owner can open. It then starts
the fronts, `python -m gateway.server.front`, each inheriting the listening sockets, so
they take turns accepting from one queue. A front that ends is started again. A front whose
link to the engine closes stops, so no front outlives its engine. On SIGINT or SIGTERM the
engine process stops its fronts, then the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import uvloop
from fastapi import FastAPI

from gateway.server import accept, bridge
from gateway.server.config import BACKLOG
from gateway.server.limits import Limits

RESTART_PAUSE = 1.0
"""Seconds between a front's end and its next start (a front that cannot start is not spun)."""
STOP_SECONDS = 10.0
"""How long the fronts have to close their connections before they are killed."""
WATCH_SECONDS = 0.5


class Fronts:
    """The front processes: started, started again when one ends, stopped."""

    def __init__(
        self, path: str, listeners: list[socket.socket], count: int, limits: Limits, level: str
    ) -> None:
        share = dataclasses.replace(limits, max_connections=max(1, limits.max_connections // count))
        self.command = [
            sys.executable,
            "-m",
            "gateway.server.front",
            "--bridge",
            path,
            "--limits",
            json.dumps(dataclasses.asdict(share)),
            "--log-level",
            level,
            *(f"--fd={listener.fileno()}" for listener in listeners),
        ]
        self.fds = tuple(listener.fileno() for listener in listeners)
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self.ended_at = [0.0] * count

    def _start(self, index: int) -> None:
        self.processes[index] = subprocess.Popen(self.command, pass_fds=self.fds)

    def start(self) -> None:
        for index in range(len(self.processes)):
            self._start(index)

    def watch(self) -> None:
        """Start again each front that has ended (a pause after its end)."""
        now = time.monotonic()
        for index, process in enumerate(self.processes):
            if process is None or process.poll() is None:
                continue
            if not self.ended_at[index]:
                self.ended_at[index] = now
                bridge.log.warning("front_ended", front=index, code=process.returncode)
            if now - self.ended_at[index] >= RESTART_PAUSE:
                self.ended_at[index] = 0.0
                self._start(index)

    def stop(self) -> None:
        """Ask every front to stop (SIGTERM: it closes its connections); kill the late."""
        running = [p for p in self.processes if p is not None and p.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve_with_workers(
    app: FastAPI,
    host: str,
    port: int,
    *,
    workers: int,
    limits: Limits,
    log_level: str = "warning",
    announce: Callable[[str], Any] = print,
) -> None:
    """Serve `app` from `workers` front processes until SIGINT or SIGTERM (see the module)."""
    listeners = accept.listening_sockets(host, port, BACKLOG)
    try:
        with tempfile.TemporaryDirectory(prefix="brokerage-") as folder:  # mode 0700
            path = os.path.join(folder, "engine.sock")
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(_engine(app, path, listeners, workers, limits, log_level, announce))
    finally:
        for listener in listeners:
            listener.close()


async def _engine(
    app: FastAPI,
    path: str,
    listeners: list[socket.socket],
    workers: int,
    limits: Limits,
    log_level: str,
    announce: Callable[[str], Any],
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with app.router.lifespan_context(app):
        server = await bridge.serve_engine(app, path)
        fronts = Fronts(path, listeners, workers, limits, log_level)
        fronts.start()
        announce(f"  {workers} HTTP worker process(es) in front of the engine process")
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), WATCH_SECONDS)
                fronts.watch()
        finally:
            await asyncio.to_thread(fronts.stop)
            server.close()
