"""Child process that runs the embedded MongoDB-wire server (SecantusDB over WiredTiger).

Started by `EmbeddedMongo`; it records its address in a JSON file so that any other
`kycflow` process reuses this server instead of opening the same files again.
Runs in its own interpreter so database work never competes with requests for a GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--address-file", required=True)
    parser.add_argument("--ttl-sweep-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)

    from secantus import SecantusDBServer  # development/test extra, never in production

    server = SecantusDBServer(  # loopback only: the embedded server has no authentication
        host="127.0.0.1", port=0, storage_path=args.storage, ttl_sweep_seconds=args.ttl_sweep_seconds
    )
    server.start()
    address_file = Path(args.address_file)
    tmp = address_file.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    # Created owner-only (0600) in the same call, so the address is never readable by others, not
    # even for a moment; O_EXCL refuses a file (or link) someone placed there meanwhile.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps({"uri": server.uri, "pid": os.getpid()}))
    tmp.replace(address_file)  # atomic: readers never see half a file

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C reaches the whole foreground process group: the service, shutting down in order, still
    # needs us (it gives its job leases back), then stops us with SIGTERM (or we follow it out below).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Exit with the parent too, so a killed service never leaves an orphan holding the files.
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:
            break
    try:
        current = json.loads(address_file.read_text())
        if current.get("pid") == os.getpid():
            address_file.unlink()
    except (OSError, ValueError):
        pass
    server.stop()


if __name__ == "__main__":
    main()
