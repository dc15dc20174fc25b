"""``forum``: the operator's one command. Configuration comes from FORUM_* variables."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from service.settings import Settings

T = TypeVar("T")


def _settings() -> Settings:
    """The settings from the environment; a wrong one is a one-line error."""
    import msgspec

    try:
        return Settings.from_env()
    except msgspec.ValidationError as error:
        raise click.ClickException(f"a FORUM_* setting is wrong: {error}") from error


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run an operator command; an unreachable PostgreSQL or Redis is a one-line error,
    not a traceback."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from events import StoreUnavailableError

    try:
        return asyncio.run(coro)
    except StoreUnavailableError as error:
        raise click.ClickException(f"cannot reach PostgreSQL: {error}") from error
    except (RedisConnectionError, RedisTimeoutError) as error:
        raise click.ClickException(f"cannot reach Redis: {error}") from error


@click.group(help="An event-sourced discussion board.")
def main() -> None:
    pass


@main.command(help="Create or upgrade the database schema (safe to run twice).")
def migrate() -> None:
    from events.migrate import migrate as run
    from service.namestore import backfill_member_names

    settings = _settings()
    try:
        migrated = asyncio.run(run(settings.database_url))
        # Members registered before names were compared by skeleton (migration 0004).
        backfilled = asyncio.run(backfill_member_names(settings.database_url))
    except OSError as error:
        raise click.ClickException(f"cannot reach PostgreSQL: {error}") from error
    applied = migrated.applied
    click.echo(f"applied migrations {applied}" if applied else "schema is up to date")
    if migrated.offset_raised_to is not None:
        click.echo("the log came from a cluster further on (a dump, a replica, a move): "
                   f"its offset is now {migrated.offset_raised_to}, so it reads in full "
                   "and new events follow it")
    if backfilled:
        click.echo(f"recorded {backfilled} member name forms")


@main.command(help="Run the HTTP service.")
@click.option("--host", default=None, help="Address to bind (default FORUM_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default FORUM_PORT or 8000).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="API processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    import uvicorn

    settings = _settings()
    uvicorn.run(
        "service.app:served_app", factory=True, host=host or settings.host,
        port=port or settings.port, workers=workers, loop="auto",
        # httptools, with request heads beyond 16 KiB refused (431): see service/headlimit.py
        http="service.headlimit:HeadLimitedHttpToolsProtocol",
        log_level=settings.log_level.lower(), access_log=False,
        # X-Forwarded-For is read by the app, from FORUM_TRUSTED_PROXIES only
        # (service/addresses.py); uvicorn would trust 127.0.0.1 by default.
        timeout_graceful_shutdown=25, proxy_headers=False,
    )


@main.command(help="Run the projection workers (Dramatiq) in the foreground.")
@click.option("--processes", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--idle-poll-ms", type=click.IntRange(5, 10_000), default=None,
              help="How long an idle Redis-broker consumer sleeps at most between polls "
                   "(bounds nudge latency, hence projection lag; default FORUM_IDLE_POLL_MS "
                   "or 25).")
def worker(processes: int, threads: int, idle_poll_ms: int | None) -> None:
    argv = [sys.executable, "-m", "dramatiq", "workers.main", "--processes", str(processes),
            "--threads", str(threads), "--queues", "projections"]
    if idle_poll_ms is not None:
        os.environ["FORUM_IDLE_POLL_MS"] = str(idle_poll_ms)
    sys.stdout.flush()
    # exec: the process manager's signals reach Dramatiq's own supervisor directly.
    os.execv(sys.executable, argv)  # noqa: S606


@main.command(help="Each projection's position, the log's head, and the lag.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    from service.operations import print_status

    _run(print_status(_settings(), as_json=as_json))


@main.command(help="Rebuild read models from the log while the old ones keep serving.")
@click.argument("projections", nargs=-1)
@click.option("--jobs", type=click.IntRange(min=1, max=64), default=None,
              help="Processes to build in (default: one per core but one; one for a small log).")
def replay(projections: tuple[str, ...], jobs: int | None) -> None:
    from service.operations import replay as run

    _run(run(_settings(), list(projections), jobs))


@main.command(name="import", help="Append threads from a JSON Lines file.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(file: Path) -> None:
    from service.importer import run

    sys.exit(_run(run(_settings(), file)))


@main.command(name="erase-guest", help="Erase a guest name from the board: it becomes a "
              "pseudonym everywhere it is shown; with --content erase the bodies of its "
              "posts go too. Cannot be undone.")
@click.argument("name")
@click.option("--content", type=click.Choice(["keep", "erase"]), default="keep",
              show_default=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_guest(name: str, content: str, yes: bool) -> None:
    from service.data_rights import erase_guest_name
    from service.domain.errors import DomainError

    if not yes:
        click.confirm(f"Erase every post's author name for the guest name {name!r}"
                      f"{' and their bodies' if content == 'erase' else ''}?", abort=True)
    try:
        erased = _run(erase_guest_name(_settings().database_url, name,
                                       "erase" if content == "erase" else "keep"))
    except DomainError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"erased: now shown as {erased.pseudonym}; {erased.events_rewritten} events "
               f"rewritten in {erased.streams} threads; the workers rebuild the read models")


@main.command(help="Write a consistent copy of everything the board cannot rebuild (the log, "
                   "credentials, sessions, names, bans, keys) to FILE, while it runs.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    from service.backups import backed_up, run_backup

    manifest = _run_database(run_backup(_settings(), file))
    click.echo(backed_up(manifest, file))


@main.command(help="Load a backup made by `forum backup` into an empty database (on any "
                   "PostgreSQL cluster), then rebuild the read models from it.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replay/--no-replay", default=True, show_default=True,
              help="Rebuild the read models in Redis afterwards (as `forum replay`).")
def restore(file: Path, replay: bool) -> None:
    from service.backups import run_restore

    click.echo(_run_database(run_restore(_settings(), file, replay=replay)))


def _run_database(coro: Coroutine[Any, Any, T]) -> T:
    """``_run`` for the commands that copy the database: a damaged file, a database that
    is not empty or a statement PostgreSQL refused is a one-line error too."""
    import asyncpg

    from events.backup import BackupError

    try:
        return _run(coro)
    except BackupError as error:
        raise click.ClickException(str(error)) from error
    except asyncpg.PostgresError as error:
        raise click.ClickException(f"PostgreSQL refused: {error}") from error
    except (OSError, asyncpg.InterfaceError) as error:
        raise click.ClickException(f"cannot reach PostgreSQL: {error}") from error


@main.command(help="Everything on one machine: services, migrations, demo data, API, workers.")
def dev() -> None:
    from service.devstack import run

    run(_settings())
