"""The one policy for characters that have no place in what people write: line breaks
become ``\\n``; other C0 and C1 controls (tab and newline stay), line and paragraph
separators, the byte-order mark and lone surrogates (which cannot be encoded as UTF-8)
are dropped. The domain applies it to what is written (service/domain/text.py) and the
renderer to whatever it is given (common/html_text.py): the same text either way.
"""

from __future__ import annotations

import re
from typing import Final

# Raw: a compiled module cannot hold surrogates in a string literal; the regex spells them.
NEWLINES: Final = re.compile(r"\r\n?")
CONTROLS: Final = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff]"
)


def drop_controls(text: str) -> str:
    """``text`` under the policy: newlines normalised, controls dropped."""
    if CONTROLS.search(text) is None:  # the usual case; \r is a control too
        return text
    return CONTROLS.sub("", NEWLINES.sub("\n", text))
