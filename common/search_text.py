"""The words of a post as search reads them: the text people see, without BBCode tags and
without the posts it quotes (pure; the search projection, workers/search/, indexes it).

Quoted text is left out because it is someone else's words: it is found in the post it
quotes, and a search for it should lead there, not to every reply that repeated it. Tags
are recognised as the renderer recognises them (common/bbcode.py's tokenizer, linear in
the body), so ``[b]wo[/b]rd`` is "word", as the page shows it, and ``[b`` typed as text
stays text.
Controls are dropped under the one character policy (common/characters.py); that also
keeps the two characters search marks its snippets with out of any body.
"""

from __future__ import annotations

from common.bbcode import _TOKEN_DATA, _TOKEN_NEWLINE, _TOKEN_TAG_END, _TOKEN_TAG_START, _Parser
from common.characters import drop_controls


def searchable_text(body: str) -> str:
    """``body``'s own words: tags out, ``[quote]…[/quote]`` (at any depth) out."""
    body = drop_controls(body)
    if "[" not in body:
        return body.strip()
    parts: list[str] = []
    quoting = 0  # quotes open around this point
    for kind, name, _opts, text in _Parser().tokenize(body):
        if kind == _TOKEN_TAG_START:
            if name == "quote":  # a block: it ends the words before it
                quoting += 1
                parts.append("\n")
        elif kind == _TOKEN_TAG_END:
            if name == "quote" and quoting:
                quoting -= 1
                parts.append("\n")
        elif quoting == 0 and kind in (_TOKEN_DATA, _TOKEN_NEWLINE):
            parts.append(text)
    return "".join(parts).strip()
