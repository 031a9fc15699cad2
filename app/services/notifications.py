"""Delivering one-time codes and account notices: email through SMTP (or a local outbox), SMS through a provider."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

from app.config import Settings
from app.domain.errors import DeliveryFailed
from app.domain.jobs import Job
from app.domain.users import User
from app.repositories.transactions import UnitOfWork
from app.services.clock import Clock
from app.services.jobs import JobService

log = logging.getLogger("kycflow.notifications")

_SUBJECTS = {
    "verify": "Verify your KYC Flow account",
    "login": "Your KYC Flow sign-in code",
    "reset": "Reset your KYC Flow password",
}


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class SmsProvider(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


class OutboxSms:
    """Console/outbox SMS provider: a real gateway plugs in behind the same interface."""

    def __init__(self, outbox: Path, clock: Clock) -> None:
        self.outbox, self.clock = outbox, clock

    async def send(self, phone: str, text: str) -> None:
        path = self.outbox / f"{self.clock.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.sms.json"
        data = json.dumps({"to": phone, "text": text}).encode()
        await asyncio.to_thread(_write_file, path, data)
        log.info("sms written to outbox", extra={"outbox_file": str(path)})


class Mailer:
    """SMTP when `SMTP_HOST` is set, else `.eml` files in `DATA_DIR/outbox/`."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings, self.clock = settings, clock
        self.outbox = settings.data_dir / "outbox"

    async def send(self, to: str, subject: str, text: str, html: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.settings.smtp_from, to, subject
        message["Message-ID"] = f"<{uuid.uuid4().hex}@kycflow>"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        if not self.settings.smtp_host:
            path = self.outbox / f"{self.clock.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
            await asyncio.to_thread(_write_file, path, message.as_bytes())
            log.info("mail written to outbox", extra={"outbox_file": str(path)})
            return
        s = self.settings
        try:
            await aiosmtplib.send(
                message, hostname=s.smtp_host, port=s.smtp_port, start_tls=s.smtp_starttls,
                username=s.smtp_username, password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                timeout=s.smtp_timeout_seconds,
            )
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            log.warning("mail delivery failed", extra={"error": type(exc).__name__})
            raise DeliveryFailed("We could not send the code; try again with resend.") from exc


class Notifier:
    def __init__(self, mailer: Mailer, sms: SmsProvider, otp_minutes: int) -> None:
        self.mailer, self.sms, self.otp_minutes = mailer, sms, otp_minutes

    async def send_code(self, *, to: str, purpose: str, code: str, name: str) -> None:
        """Email when `to` is an address, SMS when it is a phone number."""
        line = f"Your KYC Flow code is {code}. It expires in {self.otp_minutes} minutes. Never share it."
        if to.startswith("+"):
            try:
                await self.sms.send(to, line)
            except OSError as exc:
                raise DeliveryFailed("We could not send the code; try again with resend.") from exc
            return
        text = f"Hello {name},\n\n{line}\n\nIf you did not ask for this, ignore this message.\n"
        html_body = (
            f"<p>Hello {html.escape(name)},</p><p>Your KYC Flow code is <strong>{code}</strong>. "
            f"It expires in {self.otp_minutes} minutes. Never share it.</p>"
            "<p>If you did not ask for this, ignore this message.</p>"
        )
        await self.mailer.send(to, _SUBJECTS.get(purpose, "Your KYC Flow code"), text, html_body)


    async def deliver(self, *, to: str, name: str, subject: str, lines: list[str]) -> None:
        """A short account notice (a KYC decision, a loan's progress): email, or SMS to a phone.
        Raises `DeliveryFailed` when it could not be handed over (a notice job then retries)."""
        try:
            if to.startswith("+"):
                await self.sms.send(to, " ".join(lines))
                return
            text = f"Hello {name},\n\n" + "\n".join(lines) + "\n\nKYC Flow\n"
            html_body = f"<p>Hello {html.escape(name)},</p>" + "".join(f"<p>{html.escape(x)}</p>" for x in lines)
            await self.mailer.send(to, subject, text, html_body)
        except OSError as exc:
            log.warning("notice delivery failed", extra={"subject": subject, "error": type(exc).__name__})
            raise DeliveryFailed("The notice could not be delivered.") from exc
        except DeliveryFailed:
            log.warning("notice delivery failed", extra={"subject": subject, "error": "DeliveryFailed"})
            raise


NOTICE_JOB = "customer_notice"  # job kind: every notice to a customer (a KYC decision, a loan's progress)


class Notices:
    """One way to tell a customer something: a durable job queued in the unit of work of the change
    it tells of. A crash after the commit cannot lose it, a step that is run again cannot queue it
    twice (its key names the change), and a job that runs again mails once (`JobService.once`); a
    delivery refused or not taken (mail server down, a timeout) retries with backoff until it goes."""

    def __init__(self, jobs: JobService, notifier: Notifier) -> None:
        self.jobs, self.notifier = jobs, notifier
        jobs.register(NOTICE_JOB, self._deliver)

    async def queue(self, tx: UnitOfWork, user: User, key: str, subject: str, lines: list[str]) -> None:
        """`key` names the change, once (`kyc:<case>`, `loan:<loan>:<revision>`). None without an address."""
        if user.primary_identifier:
            await self.jobs.enqueue(NOTICE_JOB, f"{NOTICE_JOB}:{key}", {
                "to": user.primary_identifier, "name": user.name, "subject": subject, "lines": lines}, tx=tx)

    async def _deliver(self, job: Job) -> None:
        p = job.payload  # by name: a notice queued as `kyc_notice` or `loan_notice` (before) carries more
        await self.jobs.once(job, lambda: self.notifier.deliver(to=p["to"], name=p["name"], subject=p["subject"],
                                                                lines=p["lines"]))


def decision_notice(*, approved: bool, reasons: list[str], message: str | None,
                    again: str = "You can start a new KYC submission in the app.") -> tuple[str, list[str]]:
    """The subject and lines of a KYC decision notice: the decision, the reasons' customer-facing
    sentences and the reviewer's message to the customer (the internal note is never passed here)."""
    if approved:
        lines = ["Your KYC verification is approved. You can now apply for loans."]
    else:
        lines = ["Your KYC verification was not approved."]
        if reasons:
            lines += ["Why:", *(f"- {reason}" for reason in reasons)]
    if message:
        lines.append(f"Message from the reviewer: {message}")
    if not approved:
        lines.append(again)
    return "Your KYC verification " + ("is approved" if approved else "was not approved"), lines
