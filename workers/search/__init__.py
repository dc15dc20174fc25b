"""The search model: posts and titles in PostgreSQL full text, a projection of the log like
the read models in Redis, with its own sink (docs/design.md, "Search").

* ``changes``: what a page of the log changes (pure);
* ``sink``: the tables in PostgreSQL, the state of each generation, the transactions;
* ``follow``: live catch-up, builds and ``forum replay search``.

The reads are the read contract's (workers/readmodels/search.py). ``NAME`` is how the
operator's commands call it, beside the Redis projections (workers/projections/).
"""

from typing import Final

NAME: Final = "search"
