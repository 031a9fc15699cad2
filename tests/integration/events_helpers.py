"""Factories for the events and webhook tests: a real HTTP receiver on 127.0.0.1, KYC cases put in
place through the repositories (no models), and a way to run the job queue until it is idle."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook

from app.bootstrap import Container
from app.domain.kyc import CaseDocument, KycCase
from app.services.kyc.checks import CHECKS_JOB

HANG = -1  # a scripted "status" that never answers (the delivery times out)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # monotonic seconds
    answered: int


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server: answers each request with the next scripted status (then 200)."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: Any = None

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/kycflow"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: httpx reuses the connection
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                lines = head.split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self.statuses.pop(0) if self.statuses else 200
                self.requests.append(Received(method, path, headers, body, time.monotonic(), status))
                if status == HANG:
                    await asyncio.sleep(3600)
                writer.write(f"HTTP/1.1 {status} Scripted\r\ncontent-length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def verify(self, secret: str, n: int = -1) -> dict[str, Any]:
        """What a receiver does with the standardwebhooks library: raises unless the signature is right."""
        request = self.requests[n]
        headers = {k: request.headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        return Webhook(secret).verify(request.body, headers)  # type: ignore[no-any-return]


async def submitted_case(container: Container, user_id: str, *, queue_checks: bool = True) -> KycCase:
    """A submitted case with a PAN and an Aadhaar as if read by OCR (masked numbers only), and its
    checks job queued, as `KycCaseService.submit` leaves it (without its event: tests that need the
    event go through the service)."""
    case = await open_case_with_documents(container, user_id)
    submitted = await container.kyc.cases.submit(case.id, user_id, {"name": "Asha Rao"}, container.clock.now())
    assert submitted is not None
    if queue_checks:
        await container.jobs.enqueue(CHECKS_JOB, f"{CHECKS_JOB}:{case.id}", {"case_id": case.id})
    return submitted


async def open_case_with_documents(container: Container, user_id: str) -> KycCase:
    """An open case a `KycCaseService.submit` accepts when no selfie is required."""
    now = container.clock.now()
    cases = container.kyc.cases
    case = await cases.open_case(user_id, now)
    for kind, masked in (("pan", "XXXXXX234F"), ("aadhaar", "XXXX XXXX 1234")):
        replaced = await cases.replace_document(case.id, user_id, CaseDocument(
            id=uuid.uuid4().hex, type=kind, side="front", file_id=uuid.uuid4().hex, content_type="image/jpeg",
            uploaded_at=now, fields={"full_name": "Asha Rao"}, confidence=0.9, validation={"valid": True},
            number_masked=masked), now)
        assert replaced is not None
        case = replaced[0]
    return case


async def run_jobs(container: Container, limit: int = 50) -> int:
    """Run due jobs until none is due; returns how many ran."""
    ran = 0
    while ran < limit and await container.jobs.run_once():
        ran += 1
    return ran
