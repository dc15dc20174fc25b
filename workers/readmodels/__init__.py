"""The read contract: the workers write the read models, the service reads them, and this
package alone knows how they lie in Redis.

* ``keys``: every key (namespaces, blue/green pointers, checkpoints);
* ``formats``: how times are written;
* ``values``: the typed answers of the reads; ``errors``: why a read has none;
* ``scripts`` and ``reads``: every read, one round trip each.

The projections (workers/projections/) take what they write from here.
"""

from workers.readmodels.formats import moment_of, rfc3339, score, score_text
from workers.readmodels.keys import PROJECTION_NAMES, Keys, Namespace, counter_key

__all__ = ["PROJECTION_NAMES", "Keys", "Namespace", "counter_key",
           "moment_of", "rfc3339", "score", "score_text"]
