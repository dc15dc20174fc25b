"""Refusals as people read them on pages: the domain's details are written for API clients
("the name 'ALICE_NEW' is taken", "body must not be empty"); a form shows a sentence
instead. The API keeps the details as they are. Pure: an error in, a sentence out."""

from __future__ import annotations

import re
from collections.abc import Callable

from service.domain import errors as d

_Rule = tuple[type[d.DomainError], re.Pattern[str], Callable[[re.Match[str]], str]]


def _said(text: str) -> Callable[[re.Match[str]], str]:
    return lambda _: text


# First match wins; the patterns follow the details raised in service/domain/ and
# service/member_handlers.py (tests/unit/test_wording.py holds each one).
_RULES: list[_Rule] = [
    (d.NameTakenError, re.compile(r"is a member's name|looks like the member name"),
     _said("That name belongs to a member. Sign in to post as them, or choose another "
           "guest name.")),
    (d.ReservedNameError, re.compile(r"is reserved"),
     _said("That name is reserved. Please choose another.")),
    (d.NameTakenError, re.compile(r"in use by another guest"),
     _said("That guest name is in use by another guest. Please choose another.")),
    (d.ConflictError, re.compile(r"\bis taken\b"),
     _said("That name is already taken. Please choose another.")),
    (d.ThreadLockedError, re.compile(""),
     _said("This thread is locked: it takes no new replies.")),
    (d.NotAuthenticatedError, re.compile(r"to post as a guest"),
     _said("To post as a guest, enter a guest name, or sign in to post as a member.")),
    (d.NotAuthenticatedError, re.compile(r"wrong name or password"),
     _said("That name and password do not match. Please try again.")),
    (d.InvalidInputError, re.compile(r"^body must not be empty"),
     _said("Please write something before posting.")),
    (d.InvalidInputError, re.compile(r"^body is longer than ([\d,]+)"),
     lambda m: f"Your text is too long: it may be at most {m[1]} characters."),
    (d.InvalidInputError, re.compile(r"^title must not be empty"),
     _said("Please give your thread a title.")),
    (d.InvalidInputError, re.compile(r"^title is longer than ([\d,]+)"),
     lambda m: f"The title is too long: it may be at most {m[1]} characters."),
    (d.InvalidInputError, re.compile(r"^(?:guest_name|name) must not be empty"),
     _said("Please enter a name.")),
    (d.InvalidInputError, re.compile(r"^(?:guest_name|name) is longer than ([\d,]+)"),
     lambda m: f"That name is too long: it may be at most {m[1]} characters."),
    (d.InvalidInputError, re.compile(r"must not hold invisible characters"),
     _said("A name cannot contain invisible characters.")),
    (d.InvalidInputError, re.compile(r"may hold letters, digits"),
     _said("A name may use letters, digits, spaces, '.', '-' and '_', and must start and "
           "end with a letter or a digit.")),
    (d.InvalidInputError, re.compile(r"mixes scripts"),
     _said("That name mixes alphabets whose letters look alike. Please use one alphabet.")),
    (d.InvalidInputError, re.compile(r"^password must be (\d+) to (\d+)"),
     lambda m: f"Your password must be {m[1]} to {m[2]} characters long."),
    (d.InvalidInputError, re.compile(r"is only for guests"),
     _said("You are signed in: your post is written under your member name.")),
    (d.QuoteNotFoundError, re.compile(r"at most (\d+) posts"),
     lambda m: f"A post may quote at most {m[1]} posts."),
    (d.QuoteNotFoundError, re.compile(r"deleted"),
     _said("Your text quotes a post that was deleted. Please remove that quote.")),
    (d.QuoteNotFoundError, re.compile(""),
     _said("Your text quotes a post that is not in this thread. Please remove that "
           "quote.")),
]


def for_people(error: d.DomainError) -> str:
    """The sentence a form shows for ``error``."""
    for kind, pattern, say in _RULES:
        if isinstance(error, kind) and (found := pattern.search(error.detail)):
            return say(found)
    detail = error.detail.replace("guest_name", "guest name")
    detail = detail[:1].upper() + detail[1:]
    return detail if detail.endswith((".", "!", "?")) else detail + "."
