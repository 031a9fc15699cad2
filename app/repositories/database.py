"""The MongoDB client: PyMongo's async API (Motor, its predecessor, reached end of life on 2026-05-14)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

# Idle pooled connections are closed by the client before a firewall, a load balancer or the
# embedded server (5 minutes) drops them under it (which surfaced as AutoReconnect on the next request).
MAX_IDLE_SECONDS = 60.0


def make_client(uri: str, *, max_idle_seconds: float = MAX_IDLE_SECONDS, **options: Any) -> AsyncMongoClient[Any]:
    options.setdefault("tz_aware", True)
    options.setdefault("serverSelectionTimeoutMS", 5000)
    options.setdefault("maxIdleTimeMS", int(max_idle_seconds * 1000))
    # An acknowledged write survives a crash of the server or a failover: it is journaled on a majority of
    # the replica set before the driver returns (the server's own default may be w:1; transactions inherit it).
    options.setdefault("w", "majority")
    options.setdefault("journal", True)
    return AsyncMongoClient(uri, **options)


async def close_client(client: AsyncMongoClient[Any]) -> None:
    await client.close()


async def ping(db: Any) -> dict[str, Any]:
    await db.command("ping")
    return {"ok": True, "name": db.name}
