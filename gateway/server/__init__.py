"""The network gateway: `brokerage serve`, an ASGI app in front of one embedded `Brokerage`.

`create_app(broker, keys)` builds the app: a native JSON API under `/api/`, an
Alpaca-compatible surface under `/v2/`, and WebSocket streams (`/stream` for Alpaca's
`trade_updates`, `/stream/market` for quotes and trades).
"""

from gateway.server.app import ServerThread, create_app
from gateway.server.auth import KeyStore

__all__ = ["KeyStore", "ServerThread", "create_app"]
