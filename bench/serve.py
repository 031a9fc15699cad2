"""`python -m bench.serve serve ...`: `kycflow` exactly as `kycflow serve` runs it, plus a PyMongo
command listener that writes down the database commands of the requests the bench marks.

The bench starts its service through this module (bench/server.py), so the application code has no
bench hook: the listener is registered globally (`pymongo.monitoring.register`) before the app
builds its client, and every client of this process gets it. It keeps only commands sent while
handling a request whose `X-Request-ID` starts with `RECORD_PREFIX` (the app's own request id
context variable says which request sent a command), so for every other request it costs a
context-variable read per command. Marked requests append one JSON line per command to
`$DATA_DIR/commands.jsonl`: the request id, the database, the full command as Extended JSON (types
kept) and when it started and ended, so bench/replay.py can send the same commands again, and
those that overlapped in time together.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bson import json_util
from bson.json_util import JSONMode, JSONOptions
from pymongo import monitoring

from app.logging_setup import request_id_var

RECORD_PREFIX = "bench-record-"
LOG_NAME = "commands.jsonl"
# Sent by the driver for itself (handshakes, session clean-up), not by the route.
DRIVER_COMMANDS = frozenset({"hello", "ismaster", "isMaster", "endSessions", "saslStart", "saslContinue",
                             "buildInfo", "buildinfo"})
CANONICAL = JSONOptions(json_mode=JSONMode.CANONICAL, tz_aware=True)


def _decimal(value: object) -> dict[str, str]:
    # The app's codec turns Decimal into Decimal128 when encoding, after the listener saw the command.
    if isinstance(value, Decimal):
        return {"$numberDecimal": str(value)}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class CommandRecorder(monitoring.CommandListener):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.pending: dict[tuple[Any, int], dict[str, Any]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        request_id = request_id_var.get()
        if not request_id or not request_id.startswith(RECORD_PREFIX) or event.command_name in DRIVER_COMMANDS:
            return
        self.pending[(event.connection_id, event.request_id)] = {
            "request_id": request_id, "database": event.database_name, "name": event.command_name,
            "command": dict(event.command), "start": time.perf_counter()}

    def _done(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent, ok: bool,
              reply: Any = None) -> None:
        entry = self.pending.pop((event.connection_id, event.request_id), None)
        if entry is None:
            return
        entry["end"], entry["ok"] = time.perf_counter(), ok
        cursor = reply.get("cursor") if isinstance(reply, dict) else None
        entry["cursor_id"] = cursor.get("id") if isinstance(cursor, dict) else None
        line = json_util.dumps(entry, json_options=CANONICAL, default=_decimal)
        with self.lock, self.path.open("a") as out:  # a few lines per marked request, never on others
            out.write(line + "\n")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._done(event, True, event.reply)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._done(event, False)


def main() -> int:
    monitoring.register(CommandRecorder(Path(os.environ["DATA_DIR"]) / LOG_NAME))
    from app.cli import main as kycflow

    return kycflow(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
