"""When two names are the same name to a reader: UTS #39 confusable skeletons and scripts.

Names are compared by what they look like, not by their code points: ``alice`` spelt
with a Cyrillic ``a`` (U+0430) or a dotless ``i`` (U+0131), and ``Ilse`` (capital I) for
``llse``, must not pass for the other. Each name yields a small set of *forms*; two
names clash when their sets share a form. The forms are what the name tables in
PostgreSQL are keyed by (see service/namestore.py), so "is this name taken?" is one
indexed lookup.

Why by hand: the ``confusable-homoglyphs`` package carries Unicode's confusables and
script data and can *detect* that a string holds confusable characters, but it does not
compute a skeleton, which is what comparing two names needs. So this module builds the
UTS #39 mapping from the package's ``confusables.json`` once: the package lists, for each
character, the characters it can be confused with; a class of confusables is a connected
component of that graph and its representative is the prototype Unicode maps the others
to (the member with the most homoglyphs; it may be several characters, as ``rn`` is for
``m``). Everything here is pure and costs time linear in the name.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import cache

from confusable_homoglyphs import categories, confusables

# The library wraps right-to-left characters in LEFT-TO-RIGHT MARKs for display.
_LRM = "\u200e"


@cache
def _prototypes() -> dict[str, str]:
    """Each confusable character -> the representative (prototype) of its class."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    degree: Counter[str] = Counter()
    for key, homoglyphs in confusables.confusables_data.items():
        source = key.replace(_LRM, "")
        find(source)
        degree[source] = max(degree[source], len(homoglyphs))
        for homoglyph in homoglyphs:
            other = homoglyph["c"].replace(_LRM, "")
            if other:
                parent[find(other)] = find(source)
    classes: dict[str, list[str]] = {}
    for member in list(parent):
        classes.setdefault(find(member), []).append(member)
    mapping: dict[str, str] = {}
    for members in classes.values():
        # Deterministic: most homoglyphs, then the longer target, then code point order.
        prototype = max(members, key=lambda m: (degree[m], len(m), [-ord(c) for c in m]))
        for member in members:
            if len(member) == 1 and member != prototype:
                mapping[member] = prototype
    return mapping


def skeleton(text: str) -> str:
    """UTS #39 skeleton: NFD, each character to its class's prototype, NFD again."""
    mapping = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(mapping.get(ch, ch) for ch in decomposed))


def forms(name: str) -> frozenset[str]:
    """The keys a name is compared by. Case is folded both before and after mapping so
    that ``Ilse`` (capital I looks like l) meets ``llse``, and ``ALICE`` meets ``alice``
    spelt with a Cyrillic ``a``."""
    name = unicodedata.normalize("NFKC", name)
    folded = name.casefold()
    return frozenset({
        skeleton(folded),
        unicodedata.normalize("NFD", skeleton(name).casefold()),
        unicodedata.normalize("NFD", skeleton(skeleton(name).casefold())),
    })


RESERVED = ("operator", "moderator", "admin", "administrator", "guest", "root", "system",
            "staff")


@cache
def _reserved_forms() -> dict[str, str]:
    return {form: word for word in RESERVED for form in forms(word)}


def reserved_word(name: str) -> str | None:
    """The reserved name this name looks like, if any."""
    table = _reserved_forms()
    return next((table[f] for f in forms(name) if f in table), None)


# -- scripts ------------------------------------------------------------------------------

_NEUTRAL = frozenset({"COMMON", "INHERITED"})
# Scripts that are written together in one name in everyday use (UTS #39 "highly
# restrictive" level): Japanese, Korean and Chinese with Latin.
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
)


def scripts(text: str) -> frozenset[str]:
    """The scripts of the text's characters, Common and Inherited left out."""
    return frozenset(categories.alias(ch) for ch in text) - _NEUTRAL


def confusing_mix(text: str) -> frozenset[str] | None:
    """The scripts, when they mix in a way readers can be fooled by (e.g. Latin and
    Cyrillic); None for a single script or an everyday combination."""
    found = scripts(text)
    if len(found) <= 1 or any(found <= mix for mix in _ALLOWED_MIXES):
        return None
    return found
