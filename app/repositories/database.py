"""The MongoDB client: PyMongo's async API by default, Motor when `MONGO_DRIVER=motor`.

Both expose the same collection methods the repositories use; the one difference
that matters (PyMongo's `aggregate` is a coroutine, Motor's returns a cursor) is
smoothed over in `RepositoryBase`.
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient


def make_client(uri: str, driver: str = "pymongo", **options: Any) -> Any:
    options.setdefault("tz_aware", True)
    options.setdefault("serverSelectionTimeoutMS", 5000)
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
