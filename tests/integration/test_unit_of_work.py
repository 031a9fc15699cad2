"""One unit of work (`Transactions.run`): a server without transactions is refused at start, an
unknown commit result is retried, and every customer notice is a job written in the transaction of
the change it tells of."""

from __future__ import annotations

import asyncio
import os
import struct
import sys
from pathlib import Path
from typing import Any

import bson
import pytest
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import OperationFailure

from app.bootstrap import build_container
from app.config import StartupError
from app.domain.audit import ClientInfo
from tests.conftest import bearer, make_settings
from tests.integration.events_helpers import run_jobs
from tests.integration.lending_helpers import apply_body, borrower, make_product

# What a standalone mongod answers `hello`: no `setName`, not a mongos.
STANDALONE = {"ok": 1.0, "isWritablePrimary": True, "helloOk": True, "maxWireVersion": 21, "minWireVersion": 0,
              "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000,
              "logicalSessionTimeoutMinutes": 30, "connectionId": 1}


async def _standalone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server on the wire protocol (OP_MSG) that is a standalone: `hello` as above, `ok` to the rest."""
    try:
        while True:
            length, request_id, _, _ = struct.unpack("<iiii", await reader.readexactly(16))
            body = await reader.readexactly(length - 16)
            command = next(iter(bson.decode(body[5:5 + struct.unpack("<i", body[5:9])[0]])))
            out = b"\0\0\0\0\0" + bson.encode(STANDALONE if command.lower() in ("hello", "ismaster") else {"ok": 1.0})
            writer.write(struct.pack("<iiii", 16 + len(out), 0, request_id, 2013) + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def test_a_server_without_transactions_is_refused_at_start_with_one_clear_line(tmp_path):
    server = await asyncio.start_server(_standalone, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(StartupError) as refused:
            await build_container(make_settings(f"mongodb://127.0.0.1:{port}", tmp_path, None), ml_loaders={})
    finally:
        server.close()
    [problem] = refused.value.problems
    assert problem.startswith("MONGODB_URI: the server is a standalone mongod") and "replica set" in problem
    assert "\n" not in problem


async def test_an_unknown_commit_result_is_retried_and_the_change_commits_once(api, monkeypatch):
    product, who = await make_product(api), await borrower(api)
    commit = AsyncClientSession.commit_transaction
    dropped: list[int] = []

    async def answer_lost(session: AsyncClientSession) -> None:
        await commit(session)
        if not dropped:  # committed, but the answer never came back (a dropped connection)
            dropped.append(1)
            raise OperationFailure("connection closed", 91, {"errorLabels": ["UnknownTransactionCommitResult"]})

    monkeypatch.setattr(AsyncClientSession, "commit_transaction", answer_lost)
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))
    assert r.status_code == 201, r.text
    assert dropped and await api.container.db["loans"].count_documents({}) == 1
    assert await api.container.db["events"].count_documents({"type": "loan.applied"}) == 1


async def _applied_loan(api_factory: Any) -> tuple[Any, dict[str, Any], str, Any]:
    api = await api_factory(job_workers=0)
    product, who, admin = await make_product(api), await borrower(api), await api.staff("admin")
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))
    assert r.status_code == 201, r.text
    return api, who, r.json()["loan_id"], await api.container.users_repo.get(admin["user_id"])


def _notices(api: Any, loan_id: str) -> Any:
    return api.container.db["jobs"].find({"key": {"$regex": f"^customer_notice:loan:{loan_id}:"}}).to_list()


async def test_a_loan_notice_commits_with_its_transition_and_survives_a_stop_right_after(api_factory, monkeypatch):
    api, who, loan_id, admin = await _applied_loan(api_factory)

    async def stopped(*args: Any, **kwargs: Any) -> None:  # the process ends right after the commit
        raise RuntimeError("stopped")

    monkeypatch.setattr(api.container.audit, "record", stopped)
    with pytest.raises(RuntimeError):
        await api.container.loans.reject(admin, loan_id, "Income could not be verified.", ClientInfo())
    loan = await api.container.db["loans"].find_one({})
    assert loan["status"] == "REJECTED"
    jobs = await _notices(api, loan_id)
    assert [j["key"] for j in jobs] == [f"customer_notice:loan:{loan_id}:0", f"customer_notice:loan:{loan_id}:1"]
    assert jobs[1]["payload"]["subject"] == "Your loan application was not approved"

    await run_jobs(api.container)
    subjects = [m["Subject"] for m in api.mailbox.for_address(who["email"])]
    assert subjects.count("Your loan application was not approved") == 1, subjects
    assert subjects.count("We received your loan application") == 1, subjects


async def test_no_notice_is_queued_when_the_transition_fails(api_factory, monkeypatch):
    api, who, loan_id, admin = await _applied_loan(api_factory)

    async def broken(*args: Any, **kwargs: Any) -> None:  # the event write fails after the notice was queued
        raise RuntimeError("event store down")

    monkeypatch.setattr(api.container.events, "publish", broken)
    with pytest.raises(RuntimeError):
        await api.container.loans.reject(admin, loan_id, "Income could not be verified.", ClientInfo())
    assert (await api.container.db["loans"].find_one({}))["status"] == "APPLIED"
    assert [j["key"] for j in await _notices(api, loan_id)] == [f"customer_notice:loan:{loan_id}:0"]


async def test_kycflow_serve_against_a_standalone_server_exits_with_the_one_line(tmp_path):
    """Before uvicorn starts, so the refusal is the CLI's one message, not a traceback of the app's start."""
    server = await asyncio.start_server(_standalone, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {**os.environ, "MONGODB_URI": f"mongodb://127.0.0.1:{port}", "JWT_SECRET": "s" * 40,
           "DATA_DIR": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from app.cli import main; raise SystemExit(main(['serve', '--port', '0']))",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        server.close()
    assert proc.returncode == 1, (out, err)
    assert "- MONGODB_URI: the server is a standalone mongod" in err.decode() and b"Traceback" not in out + err


async def test_a_change_that_keeps_conflicting_answers_409_and_changes_nothing(api_factory, monkeypatch):
    from app.repositories.loans import LoanRepository

    api, who, loan_id, admin = await _applied_loan(api_factory)
    tries: list[int] = []

    async def conflicting(self: LoanRepository, before: Any, after: Any) -> None:
        tries.append(1)  # another transaction holds the loan every time (a write conflict)
        raise OperationFailure("WriteConflict", 112, {"errorLabels": ["TransientTransactionError"]})

    monkeypatch.setattr(LoanRepository, "save", conflicting)
    staff = await api.staff("admin")
    r = await api.client.post(f"/admin/loans/{loan_id}/reject", headers=bearer(staff),
                              json={"reason": "Income could not be verified."})
    assert r.status_code == 409 and r.json()["error_code"] == "concurrent_change", r.text
    assert r.headers["Retry-After"] == "1" and len(tries) == 10
    assert (await api.container.db["loans"].find_one({}))["status"] == "APPLIED"
    assert [j["key"] for j in await _notices(api, loan_id)] == [f"customer_notice:loan:{loan_id}:0"]
