"""What the API, the pages and the operator's CLI read from the environment, on top of
what the workers read (the CLI starts workers and the API sends them nudges)."""

from __future__ import annotations

from workers.settings import WorkerSettings


class Settings(WorkerSettings, frozen=True, kw_only=True):
    operator_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    per_page: int = 25
    # The largest request body taken, in bytes (form posts and JSON alike; larger: 413).
    # A body holds at most 50,000 characters, and JSON escaping (\uXXXX, a surrogate pair
    # for each astral character) can make that a few times larger.
    max_body_bytes: int = 1024 * 1024
    min_position_wait: float = 2.0
    # API processes keep each answer this long (workers/readmodels/reads.py); 0: off.
    page_cache_ms: int = 250
    ready_max_lag: float = 30.0
    db_pool_size: int = 20
    # Searches have a pool of their own, so that a burst of them never takes the
    # connections that writes need (each search is also cancelled after 3 s).
    search_pool_size: int = 4
    # How long a member's session (bearer token, page cookie) lasts, in seconds.
    session_ttl: int = 30 * 24 * 3600
    # Abuse limits (service/limits.py): "off" turns every limit off (benchmarks, load tests).
    # Each limit is "N/period" rules joined by ";" (the `limits` library's notation, e.g.
    # "6/minute;60/hour"); an empty value means no limit of that kind.
    rate_limits: str = "on"
    # Peers whose X-Forwarded-For is believed: comma-separated addresses or CIDRs.
    trusted_proxies: str = ""
    limit_thread_guest: str = "1/minute;6/hour"  # per guest identity, and per address
    limit_thread: str = "2/minute;20/hour"  # per member
    limit_reply_guest: str = "2/minute;20/hour"  # per guest identity, and per address
    limit_reply: str = "6/minute;60/hour"  # per member
    limit_bump: str = "2/minute;10/hour"
    limit_edit: str = "10/minute;100/hour"  # edits and deletions
    limit_like: str = "30/minute;300/hour"  # likes and unlikes
    limit_write: str = "10/minute;100/hour"  # any other write
    limit_address: str = "60/minute;600/hour"  # every limited write from one address
    limit_register: str = "3/hour;10/day"  # registration attempts per address
    limit_signin: str = "20/minute;100/hour"  # sign-in attempts per address
    limit_search: str = "30/minute;600/hour"  # searches per address (service/api/search.py)
    # Failed sign-ins: each tier refuses until its window slides, so the wait grows with
    # the failures (back-off) and ends in a refusal for a while.
    limit_signin_failures_name: str = "3/10 seconds;5/minute;7/5 minutes;10/15 minutes"
    limit_signin_failures_address: str = "10/minute;20/5 minutes;40/15 minutes;100/day"
    # Which posts are held for a moderator's review (service/domain/review.py):
    # guest-links | guests | links | off.
    hold: str = "guest-links"
    # A guest name stays with the guest identity that used it this long after its last use.
    guest_name_days: float = 30.0
    # The board's address as people reach it (``https://forum.example``, no path): the
    # Atom feeds' links and ids are absolute. Empty: taken from each request's own
    # address (fine behind a proxy that passes Host on; set it when a cache is in front).
    public_url: str = ""
    # Seconds a shared cache (a CDN, a caching proxy) and a browser may keep an anonymous
    # page or a feed without asking again (Cache-Control: public, max-age); 0: never.
    public_max_age: int = 10
    # Entries in each Atom feed (the newest threads or posts).
    feed_entries: int = 20
    # Bytes of folded threads an API process keeps for deciding writes (service/
    # thread_cache.py); one thread may take an eighth. About 25 bytes a post: the default
    # holds some 2.5 million posts' worth. A thread not kept is loaded from its snapshot.
    thread_cache_bytes: int = 64 * 1024 * 1024
    # A thread's write-side state is snapshotted when a load leaves it this many events
    # past its newest snapshot (service/thread_loading.py): a cold load folds at most
    # about this many events after the snapshot.
    thread_snapshot_every: int = 500
