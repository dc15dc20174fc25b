"""Form refusals in words for people (service/web/wording.py), from the details the domain
really raises."""

from __future__ import annotations

import pytest

from service.domain import errors as d
from service.domain.members import check_password
from service.domain.text import clean_body, clean_name
from service.member_handlers import _GUEST_NAME_IN_USE
from service.web.wording import for_people


def refusal(call, *args) -> d.DomainError:  # type: ignore[no-untyped-def]
    with pytest.raises(d.DomainError) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize(("error", "said"), [
    (d.ConflictError("the name 'ALICE_NEW' is taken"),
     "That name is already taken. Please choose another."),
    (d.NameTakenError("the name 'alice' is taken: it looks like 'Alice'"),
     "That name is already taken. Please choose another."),
    (d.NameTakenError("'Ann' is a member's name: sign in to post as them, or choose another "
                      "guest name"),
     "That name belongs to a member. Sign in to post as them, or choose another guest name."),
    (d.NameTakenError(_GUEST_NAME_IN_USE),
     "That guest name is in use by another guest. Please choose another."),
    (d.ThreadLockedError("the thread is locked and takes no replies"),
     "This thread is locked: it takes no new replies."),
    (d.NotAuthenticatedError("to post as a guest, give a temporary guest_name; or sign in"),
     "To post as a guest, enter a guest name, or sign in to post as a member."),
    (d.NotAuthenticatedError("wrong name or password"),
     "That name and password do not match. Please try again."),
    (refusal(clean_body, "  "), "Please write something before posting."),
    (refusal(clean_name, "a\u200bb", "guest_name"),
     "A name cannot contain invisible characters."),
    (refusal(clean_name, "-x-", "name"),
     "A name may use letters, digits, spaces, '.', '-' and '_', and must start and end "
     "with a letter or a digit."),
    (refusal(clean_name, "", "guest_name"), "Please enter a name."),
    (refusal(check_password, "x"), None),
    (d.TooSoonError("too many posts in a short time; try again in 40 seconds", 40),
     "Too many posts in a short time; try again in 40 seconds."),
    (d.ConflictError("you already like this post"), "You already like this post."),
])
def test_each_refusal_reads_as_a_sentence(error: d.DomainError, said: str | None) -> None:
    words = for_people(error)
    if said is None:
        assert words.startswith("Your password must be ") and words.endswith("long.")
    else:
        assert words == said
    assert "guest_name" not in words and "'" not in words[:1]
