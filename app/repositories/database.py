"""The MongoDB client: PyMongo's async API by default, Motor when `MONGO_DRIVER=motor`.

Both expose the same collection methods the repositories use; the one difference
that matters (PyMongo's `aggregate` is a coroutine, Motor's returns a cursor) is
smoothed over in `RepositoryBase`.
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

# Idle pooled connections are closed by the client before a firewall, a load balancer or the
# embedded server (5 minutes) drops them under it (which surfaced as AutoReconnect on the next request).
MAX_IDLE_SECONDS = 60.0


def make_client(uri: str, driver: str = "pymongo", *, max_idle_seconds: float = MAX_IDLE_SECONDS,
                **options: Any) -> Any:
    options.setdefault("tz_aware", True)
    options.setdefault("serverSelectionTimeoutMS", 5000)
    options.setdefault("maxIdleTimeMS", int(max_idle_seconds * 1000))
    if driver == "motor":
        from motor.motor_asyncio import AsyncIOMotorClient

        return AsyncIOMotorClient(uri, **options)
    return AsyncMongoClient(uri, **options)


async def close_client(client: Any) -> None:
    result = client.close()
    if hasattr(result, "__await__"):  # PyMongo async: coroutine; Motor: plain call
        await result


async def ping(db: Any) -> dict[str, Any]:
    await db.command("ping")
    return {"ok": True, "name": db.name}
