"""A front process of `brokerage serve --workers` (started by workers.py; see bridge.py)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket

import uvicorn

from gateway.server import bridge
from gateway.server.config import GC_THRESHOLDS, server_config
from gateway.server.limits import Limits, raise_file_limit


def run_front(path: str, fds: list[int], limits: Limits, log_level: str) -> None:
    """Serve the clients of the listening sockets `fds` through the engine at `path`."""
    raise_file_limit(limits.max_connections)
    gc.set_threshold(*GC_THRESHOLDS)
    listeners = [socket.socket(fileno=fd) for fd in fds]
    server: uvicorn.Server | None = None

    def lost() -> None:
        bridge.log.warning("front_lost_engine", pid=os.getpid())
        if server is not None:
            server.should_exit = True

    front = bridge.BridgeApp(path, on_lost=lost)
    server = uvicorn.Server(server_config(front, limits, log_level=log_level))
    gc.freeze()
    server.run(sockets=listeners)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a front process of `brokerage serve --workers`")
    parser.add_argument("--bridge", required=True, help="the engine's Unix socket")
    parser.add_argument("--fd", type=int, action="append", required=True, help="a listening fd")
    parser.add_argument("--limits", required=True, help="the limits, as JSON")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    run_front(args.bridge, args.fd, Limits(**json.loads(args.limits)), args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
