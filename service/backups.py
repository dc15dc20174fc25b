"""What ``forum backup`` and ``forum restore`` do for the operator: progress, the summary,
and the read models rebuilt after a restore. The copying itself is events/backup.py."""

from __future__ import annotations

import sys
from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from events.backup import BackupError, Manifest, backup, restore
from service.progress import Reporter, reporter
from service.settings import Settings


def _summary(manifest: Manifest) -> str:
    others = sum(t.rows for t in manifest.tables if t.name != "events")
    return (f"{manifest.count('events')} events and {others} other rows "
            f"(schema version {manifest.schema_version})")


class _Progress:
    """A reporter made once the total is known (a backup counts its rows first)."""

    def __init__(self, verb: str, label: str) -> None:
        self._verb, self._label = verb, label
        self._show: Reporter | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._show is None:
            self._show = reporter(total, verb=self._verb, label=self._label, unit="rows")
        self._show(done)

    def end(self, total: int) -> None:
        self(total, total)
        assert self._show is not None
        self._show(total, final=True)


async def run_backup(settings: Settings, path: Path) -> Manifest:
    progress = _Progress("backing up", f"backup to {path}")
    manifest = await backup(settings.database_url, path, on_rows=progress)
    progress.end(manifest.rows)
    return manifest


def backed_up(manifest: Manifest, path: Path) -> str:
    return (f"backed up {_summary(manifest)} to {path} "
            f"({path.stat().st_size / 1e6:,.1f} MB)")


async def run_restore(settings: Settings, path: Path, *, replay: bool) -> str:
    progress = _Progress("restoring", f"restore from {path}")
    restored = await restore(settings.database_url, path, on_rows=progress)
    progress.end(restored.manifest.rows)
    said = [f"restored {_summary(restored.manifest)}"]
    if restored.migrated.applied:
        said.append(f"applied migrations {restored.migrated.applied}")
    if restored.migrated.offset_raised_to is not None:
        said.append(f"the log's offset is now {restored.migrated.offset_raised_to}: the log "
                    "reads in full and new events follow it")
    sys.stdout.write("\n".join(said) + "\n")
    if not replay:
        return ("read models not rebuilt (--no-replay): run `forum replay` before the "
                "service serves this database")
    from service.operations import replay as rebuild

    try:
        await _forget_read_models(settings)
        await rebuild(settings, [], None)
    except (RedisConnectionError, RedisTimeoutError) as error:
        raise BackupError(f"restored, but the read models were not rebuilt: cannot reach "
                          f"Redis ({error}); run `forum replay` once it is up") from error
    return "read models rebuilt from the restored log"


async def _forget_read_models(settings: Settings) -> None:
    """Read models under this key prefix were built from another log (the database was
    empty), perhaps one further on than the backup: a rebuild would wait forever to catch
    up with them, and they are not this log's anyway. Readers find none until the rebuild
    swaps the new ones in."""
    from common.redis_client import connect
    from workers.projections import PROJECTIONS
    from workers.readmodels import Keys
    from workers.rebuild import as_text, drop_namespace

    keys = Keys(settings.key_prefix)
    redis = connect(settings.redis_url, cluster=settings.redis_cluster,
                    socket_connect_timeout=2, socket_timeout=30)
    try:
        for name in PROJECTIONS:
            active = as_text(await redis.getdel(keys.active(name)))
            if active is not None:
                await drop_namespace(redis, keys, name, active)
    finally:
        await redis.aclose()
