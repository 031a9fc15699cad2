"""A PyMongo command listener for tests: every command the app's client sends to the test's
database, tagged with the HTTP request (`request_id_var`) or the job kind (`job_kind_var`) that
sent it. PyMongo calls `started` synchronously in the task that sends the command, so the context
variables of that task say who asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo import monitoring

from app.logging_setup import job_kind_var, request_id_var

# Sent by the driver for itself (handshakes, session clean-up), not by the code under test.
DRIVER_COMMANDS = frozenset({"hello", "ismaster", "isMaster", "endSessions", "saslStart",
                             "saslContinue", "buildInfo", "buildinfo"})
# Sent to `admin` but part of a route's work: a transaction's commit is one more round trip.
TRANSACTION_COMMANDS = frozenset({"commitTransaction", "abortTransaction"})


@dataclass(frozen=True)
class Query:
    """The part of a command that selects documents: what the index check looks at."""

    filter: dict[str, Any]
    sort: dict[str, Any] = field(default_factory=dict)
    limit: int = 0  # 0: no limit
    then: str = ""  # aggregate: the stage after the leading $match/$sort ("$group", "$facet"...)


@dataclass(frozen=True)
class Command:
    name: str
    collection: str | None
    request_id: str | None
    job_kind: str | None
    queries: tuple[Query, ...] = ()

    def __str__(self) -> str:
        return f"{self.name} {self.collection or ''}".strip()


def _queries(name: str, body: Any) -> tuple[Query, ...]:
    if name == "find":
        limit = abs(body.get("limit") or 0)
        return (Query(dict(body.get("filter") or {}), dict(body.get("sort") or {}), limit),)
    if name in ("count", "distinct"):
        return (Query(dict(body.get("query") or {})),)
    if name == "findAndModify":
        return (Query(dict(body.get("query") or {}), dict(body.get("sort") or {})),)
    if name == "update":
        return tuple(Query(dict(u.get("q") or {})) for u in body.get("updates", ()))
    if name == "delete":
        return tuple(Query(dict(d.get("q") or {})) for d in body.get("deletes", ()))
    if name == "aggregate":
        pipeline = list(body.get("pipeline") or [])
        match: dict[str, Any] = {}
        sort: dict[str, Any] = {}
        if pipeline and "$match" in pipeline[0]:
            match = dict(pipeline.pop(0)["$match"])
        if pipeline and "$sort" in pipeline[0]:
            sort = dict(pipeline.pop(0)["$sort"])
        stage = pipeline[0] if pipeline else {}
        then = next(iter(stage), "")
        if then == "$group" and stage["$group"].get("_id") == 1:
            then = "count"  # what `count_documents` sends
        return (Query(match, sort, then=then),)
    return ()


class CommandLog(monitoring.CommandListener):
    """Pass in `create_app(..., db_listeners=[log])`; set `database` once the app's name is known."""

    def __init__(self, database: str | None = None) -> None:
        self.database = database
        self.commands: list[Command] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in DRIVER_COMMANDS:
            return
        if name not in TRANSACTION_COMMANDS and event.database_name != self.database:
            return
        target = event.command.get(name)
        self.commands.append(Command(
            name=name, collection=target if isinstance(target, str) else None,
            request_id=request_id_var.get(), job_kind=job_kind_var.get(), queries=_queries(name, event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def of_request(self, request_id: str) -> list[Command]:
        return [c for c in self.commands if c.request_id == request_id]
