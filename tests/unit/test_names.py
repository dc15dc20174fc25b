"""The pure name and text rules: confusable skeletons, scripts, reserved names, invisible
characters, and who counts as the same guest."""

from __future__ import annotations

import time

import pytest

from service.domain.actors import Actor
from service.domain.errors import ConflictError, InvalidInputError, ReservedNameError
from service.domain.names import confusing_mix, forms, reserved_word, skeleton
from service.domain.text import clean_body, clean_name, clean_title, has_visible
from service.errors import _STATUS

# -- skeletons --------------------------------------------------------------------------

def same_name(a: str, b: str) -> bool:
    """Two names a reader could take for one another (what the name tables check)."""
    return not forms(a).isdisjoint(forms(b))


@pytest.mark.parametrize(("a", "b"), [
    ("\u0430lice", "alice"),  # Cyrillic a
    ("al\u0131ce", "alice"),  # dotless i
    ("b\u03bfb", "bob"),  # Greek omicron
    ("Ilse", "llse"),  # capital I and small l
    ("ALICE", "\u0430lice"),
    ("rnary", "mary"),  # r n reads as m
    ("b0b", "bob"),
    ("\uff41lice", "alice"),  # fullwidth a (NFKC)
    ("\u043eperator", "operator"),
    ("\u0441\u043e\u0440", "cop"),  # whole-script: every letter Cyrillic
])
def test_look_alikes_share_a_form(a, b):
    assert same_name(a, b) and same_name(b, a)


@pytest.mark.parametrize(("a", "b"), [("alice", "bob"), ("ann", "anne"), ("ilse", "llse"),
                                      ("Дмитрий", "dmitriy"), ("山田", "田山")])
def test_different_names_do_not(a, b):
    assert not same_name(a, b)


def test_skeleton_maps_to_the_class_prototype_and_is_stable():
    assert skeleton("\u0430") == skeleton("a") == "a"
    assert skeleton("m") == "rn"
    assert skeleton(skeleton("Ilse")) == skeleton("Ilse")


def test_forms_cost_linear_time():
    started = time.perf_counter()
    forms("a" * 100_000)
    assert time.perf_counter() - started < 2


# -- reserved names -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["operator", "OPERATOR", "\u043eperator", "0perator",
                                  "adm\u0131n", "Guest", "m\u043ederator"])
def test_reserved_names_and_their_look_alikes_are_reserved(name):
    assert reserved_word(name) is not None


def test_a_reserved_name_is_a_409_conflict_and_still_an_invalid_name():
    with pytest.raises(ReservedNameError):
        clean_name("0perator")
    assert issubclass(ReservedNameError, ConflictError)
    assert issubclass(ReservedNameError, InvalidInputError)
    status = next(s for kind, s in _STATUS if issubclass(ReservedNameError, kind))
    assert status == 409


# -- scripts ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["alice", "Дмитрий", "Αλέξανδρος", "山田太郎", "田中さん",
                                  "タナカ", "Tanaka 田中", "김민준", "Kim 金민준", "陳ㄅ",
                                  "mary-jane 2", "دانیال", "देवनागरी"])
def test_single_scripts_and_everyday_mixes_are_not_confusing(name):
    assert confusing_mix(name) is None
    assert clean_name(name) == name


@pytest.mark.parametrize("name", ["\u0430lice", "b\u03bfb", "pay\u0440al", "Dmitri\u0439",
                                  "\u03b1lpha", "김민준ア"])
def test_confusing_mixes_of_scripts_are_invalid(name):
    assert confusing_mix(name) is not None
    with pytest.raises(InvalidInputError, match="scripts"):
        clean_name(name)


# -- invisible characters -----------------------------------------------------------------

INVISIBLE = ["\u200b", "\u2060\ufeff", "\u200d", "\u200c", "\u202e", "\u2066\u2069",
             "\u00ad", "\u3164", "\u115f", "\u1160", "\uffa0", "\u0301\u0302", "\ufe0f",
             "\U000e0041", "\u2800", " \u200b\t\u200b "]


@pytest.mark.parametrize("blank", INVISIBLE)
def test_invisible_only_text_is_empty(blank):
    assert not has_visible(blank)
    with pytest.raises(InvalidInputError, match="empty"):
        clean_body(blank)
    with pytest.raises(InvalidInputError, match="empty"):
        clean_title(blank)
    with pytest.raises(InvalidInputError):
        clean_name(blank)


def test_invisible_characters_inside_real_text_are_kept():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    assert clean_body(f"{family} {persian}") == f"{family} {persian}"
    assert clean_title(f"Hi {family}") == f"Hi {family}"


@pytest.mark.parametrize("name", ["bob\u200b", "b\u200do\u200db", "ann\u3164", "\u00adann"])
def test_names_hold_no_invisible_characters(name):
    with pytest.raises(InvalidInputError):
        clean_name(name)


def test_visibility_costs_linear_time():
    started = time.perf_counter()
    assert not has_visible("\u200b" * 1_000_000)
    assert time.perf_counter() - started < 2


# -- the same guest -----------------------------------------------------------------------

def test_a_guest_is_the_same_guest_only_by_identity():
    me = Actor("ann", "guest", guest_id="a" * 32)
    assert me.same_person("ANN", True, "a" * 32)
    assert me.same_person("someone else", True, "a" * 32)  # the identity decides, not names
    assert not me.same_person("ann", True, "b" * 32)
    assert not me.same_person("ann", True, None)  # a thread from before identities
    assert not Actor("ann", "guest").same_person("ann", True, "a" * 32)


def test_guests_without_identities_are_matched_by_name_as_imports_are():
    assert Actor("ann", "guest").same_person("ANN", True, None)
    assert not Actor("ann", "guest").same_person("ann", False, None)


def test_members_are_matched_by_name():
    assert Actor("Ann", "member").same_person("ann", False)
    assert not Actor("ann", "member").same_person("ann", True, None)
