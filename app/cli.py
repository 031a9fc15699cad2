"""`kycflow` command line: serve, worker, create-user, seed-catalogue, screening load, eval."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from app.config import StartupError, checked_settings, get_settings
from app.domain.errors import DomainError
from app.domain.users import Role


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.http_protocol import bounded_protocol

    settings = get_settings()  # checked by `main`
    if settings.mongodb_uri:  # refused here in one line, not in a traceback from the app's start-up
        asyncio.run(_require_transactions(settings.mongodb_uri))
    # The app logs this URL's /docs once its models are ready (it cannot see its own address).
    os.environ["KYCFLOW_SERVE_URL"] = f"http://{args.host}:{args.port}"
    uvicorn.run("app.main:app_factory", factory=True, host=args.host, port=args.port, log_config=None,
                workers=1, proxy_headers=False,
                # request heads bounded (431), where httptools would read one of any size
                http=bounded_protocol(settings.max_header_field_bytes, settings.max_header_bytes,
                                      settings.max_header_count),
                server_header=False,  # no "server: uvicorn" banner telling a prober what runs here
                timeout_graceful_shutdown=settings.shutdown_grace_seconds)
    return 0


async def _require_transactions(uri: str) -> None:
    from pymongo.errors import PyMongoError

    from app.bootstrap import require_transactions
    from app.repositories.database import close_client, make_client

    client = make_client(uri)
    try:
        await require_transactions(client)
    except PyMongoError:
        pass  # not reachable (yet): the app's own start says so
    await close_client(client)


async def _create_user(args: argparse.Namespace) -> int:
    from app.bootstrap import build_container

    # Reuses the running service's embedded database when there is one (see EmbeddedMongo).
    container = await build_container(get_settings())
    try:
        user = await container.admin.create_user(email=args.email, password=args.password, name=args.name,
                                                 role=Role(args.role))
    except DomainError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    finally:
        await container.close()
    print(f"created {user.role.value} {user.email} id={user.id}")
    return 0


async def _worker(args: argparse.Namespace) -> int:
    """Job workers alone, against the configured database, until SIGTERM/SIGINT; leases go back on exit."""
    import logging
    import signal

    from app.bootstrap import build_container
    from app.logging_setup import configure_logging

    settings = get_settings()  # checked by `main`
    configure_logging(settings.log_level)
    container = await build_container(settings)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        container.jobs.start(args.workers or max(settings.job_workers, 1))
        await container.serve_metrics()  # METRICS_PORT, where set: the worker has no other HTTP
        logging.getLogger("kycflow").info("job worker ready", extra={"owner": container.jobs.owner,
                                                                    "kinds": container.jobs.kinds})
        await stop.wait()
    finally:
        await container.close()  # cancels running handlers and releases their leases
    return 0


async def _seed_catalogue(_: argparse.Namespace) -> int:
    """The sample banks and loan products; what exists already is left as it is (safe to run twice)."""
    from app.bootstrap import build_container

    container = await build_container(get_settings())
    try:
        banks, products = await container.catalogue.seed()
    finally:
        await container.close()
    print(f"catalogue seeded: {banks} bank(s) and {products} product(s) added")
    return 0


async def _screening_load(args: argparse.Namespace) -> int:
    """A watchlist file in force as list `--list`, atomically; the re-screen of approved customers queued."""
    from pathlib import Path

    from app.bootstrap import build_container

    container = await build_container(get_settings(), ml_loaders={})
    try:
        loaded = await container.screening.load(args.list, Path(args.file))
    except DomainError as exc:
        print(f"error: {exc.message} ({exc.code}); the list in force is unchanged", file=sys.stderr)
        return 1
    finally:
        await container.close()
    print(f"list {loaded.name} version {loaded.version} in force: {loaded.entries} entries, {loaded.changed} new or "
          "changed; approved customers are re-screened against those by the job workers")
    return 0


def _eval(args: argparse.Namespace) -> int:
    """Run the service's own model classes over labelled data and print the figures."""
    import json
    from pathlib import Path

    from app.ml import evaluation, models

    evaluate, build = {"faces": (evaluation.evaluate_faces, models.face_matcher),
                       "ocr": (evaluation.evaluate_ocr, models.ocr_extractor),
                       "liveness": (evaluation.evaluate_liveness, models.liveness_detector)}[args.kind]
    report = evaluate(Path(args.path), build(get_settings()))
    print(json.dumps(report, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kycflow", description="KYC Flow service commands")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    worker = sub.add_parser("worker", help="run background job workers only (no HTTP), until SIGTERM")
    worker.add_argument("--workers", type=int, default=0, help="concurrent jobs (default: JOB_WORKERS, at least 1)")
    create = sub.add_parser("create-user", help="create an active account (the way the first admin is made)")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.CUSTOMER.value)
    sub.add_parser("seed-catalogue", help="add the sample banks and loan products (safe to run twice)")
    screening = sub.add_parser("screening", help="sanctions and PEP watchlists").add_subparsers(dest="action",
                                                                                              required=True)
    load = screening.add_parser("load", help="put a watchlist file in force (OpenSanctions targets.simple.csv or "
                                             "the UN consolidated list XML), replacing the list of that name")
    load.add_argument("file", help="a targets.simple.csv, or the UN XML (a file starting with '<')")
    load.add_argument("--list", required=True, help="the list's name, e.g. opensanctions or un")
    evaluate = sub.add_parser("eval", help="accuracy of the models on a folder of labelled data")
    evaluate.add_argument("kind", choices=["faces", "ocr", "liveness"])
    evaluate.add_argument("path", help="a labelled CSV (pairs.csv, mrz_expected.csv, annotations.csv) or its folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command != "eval":  # eval reads files only; every other command runs the service's parts
            checked_settings()
        return _run(args)
    except StartupError as exc:  # settings, not a bug: one message naming each, no traceback
        print(f"kycflow: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    if args.command == "eval":
        return _eval(args)
    if args.command == "worker":
        return asyncio.run(_worker(args))
    if args.command == "screening":
        return asyncio.run(_screening_load(args))
    if args.command == "seed-catalogue":
        return asyncio.run(_seed_catalogue(args))
    return asyncio.run(_create_user(args))


if __name__ == "__main__":
    sys.exit(main())
