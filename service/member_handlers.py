"""Use-cases of members and guests: register, sign in, roles, suspensions, and the guest
a write names. Part of ``Handlers`` (service/handlers.py); the rules are pure, in
service/domain/members.py and service/domain/names.py.
"""

from __future__ import annotations

from collections.abc import Callable

from events import ConcurrencyError, ForumEvent
from events.members import MemberRegistered, MemberSuspended
from events.records import member_stream
from service import commands as c
from service.domain import members
from service.domain.actors import Actor
from service.domain.errors import ConflictError, NameTakenError, NotAuthenticatedError
from service.domain.text import clean_name, normal_name
from service.handling import Plumbing, RequestMeta

_GUEST_NAME_IN_USE = (
    "this guest name is in use by another guest; choose another name (a guest name stays "
    "with the guest that used it, identified by its guest token, for a while after its "
    "last use)"
)


class MemberUseCases(Plumbing):
    async def guest(self, guest_name: str | None, guest_id: str | None = None,
                    returning: bool = False) -> Actor:
        """A guest writing under ``guest_name`` with the identity ``guest_id`` (a digest of
        its guest token; see service/guests.py); ``returning`` when the request sent that
        token back (rather than being issued it now).

        Refused with 409 when the name looks like a member's or a reserved name
        (confusable skeletons, not just case), or like a guest name held by another guest
        identity. A guest name is *held* by a returning guest: writing with its token sent
        back takes (atomically) or renews the hold, which lapses after ``guest_name_hold``
        without use (FORUM_GUEST_NAME_DAYS, 30 days by default). A first write, issued its
        token just now, holds nothing: a client that never sends tokens back can keep
        writing under a free name, and a write that fails leaves no hold for a token
        nobody received. Rights (OP mark, starter's bump) follow the identity either way."""
        if guest_name is None:
            raise NotAuthenticatedError(
                "to post as a guest, give a temporary guest_name; or sign in as a member"
            )
        name = clean_name(guest_name, "guest_name")  # normalised before the lookup
        now = self.clock()
        since = now - self.guest_name_hold
        # member_names holds every member's name forms (registration claims them first),
        # so one query answers "a member's name?" and "another guest's?" together.
        like, holder = await self.names.look_alikes(
            name, guest_id if guest_id is not None and not returning else None, since)
        if like is not None:
            what = ("is a member's name" if like.casefold() == name.casefold()
                    else f"looks like the member name {like!r}")
            raise NameTakenError(
                f"{name!r} {what}: sign in to post as them, or choose another guest name")
        if guest_id is not None:
            if returning:
                allowed = await self.names.claim_guest(name, guest_id, now, since)
            else:
                allowed = holder is None
            if not allowed:
                raise NameTakenError(_GUEST_NAME_IN_USE)
        return Actor(name, "guest", guest_id=guest_id)

    # -- members ----------------------------------------------------------------------

    async def change_role(self, name: str, cmd: c.ChangeRole, actor: Actor, meta: RequestMeta
                          ) -> c.MemberResult:
        if (first := await self._first_answer(meta, c.MemberResult)) is not None:
            return first
        stream = member_stream(name.strip())

        async def attempt() -> c.MemberResult:  # read again after a lost race: decide anew
            existing = [r.event for r in await self.store.read_stream(stream)]
            new = members.change_role(existing, role=cmd.role, actor=actor, now=self.clock())
            found = members.member(existing)
            assert found is not None  # change_role refuses a missing member
            result = c.MemberResult(name=found.name, role=cmd.role)
            return await self._append(stream, len(existing), new, result, meta)
        return await self._retrying(stream, attempt)

    async def suspend(self, name: str, cmd: c.Suspend, actor: Actor, meta: RequestMeta
                      ) -> c.SuspensionResult:
        return await self._judge(name, meta, lambda existing: members.suspend(
            existing, name, until=cmd.until, reason=cmd.reason, actor=actor,
            now=self.clock()))

    async def lift_suspension(self, name: str, actor: Actor, meta: RequestMeta
                              ) -> c.SuspensionResult:
        return await self._judge(name, meta, lambda existing: members.lift_suspension(
            existing, name, actor=actor, now=self.clock()))

    async def _judge(self, name: str, meta: RequestMeta,
                     decide: Callable[[list[ForumEvent]], list[ForumEvent]]
                     ) -> c.SuspensionResult:
        """Suspend or reinstate: decide on the member's stream and append, deciding again
        after a lost race (a role change or another moderator's decision meanwhile)."""
        if (first := await self._first_answer(meta, c.SuspensionResult)) is not None:
            return first
        stream = member_stream(name.strip())

        async def attempt() -> c.SuspensionResult:
            existing = [r.event for r in await self.store.read_stream(stream)]
            (event,) = decide(existing)
            suspended = event if isinstance(event, MemberSuspended) else None
            result = c.SuspensionResult(
                name=getattr(event, "name", name), suspended=suspended is not None,
                until=suspended.until if suspended else None,
                reason=suspended.reason if suspended else None)
            return await self._append(stream, len(existing), [event], result, meta)
        return await self._retrying(stream, attempt)

    async def sign_in(self, name: str, password: str) -> MemberRegistered:
        """The member these credentials belong to; one refusal (NotAuthenticatedError) for
        every kind of miss. A suspended member with the right password is 403."""
        found, history, stored = None, [], None
        if 0 < len(name) <= 64 and len(password) <= members.PASSWORD_MAX:
            # Not clean_name: a member registered before a name rule still signs in.
            normal = normal_name(name)
            if normal:
                stream = member_stream(normal)
                history = [r.event for r in await self.store.read_stream(stream)]
                found = members.member(history)
                if found is not None:
                    stored = await self.store.password_hash(stream)
        if not await self.offload.run(self.verify_password, stored, password[:1024]):
            raise NotAuthenticatedError("wrong name or password")
        assert found is not None
        members.check_not_suspended(members.standing(history), self.clock())
        return found

    async def register(self, cmd: c.Register, meta: RequestMeta) -> c.MemberResult:
        if (first := await self._first_answer(meta, c.MemberResult)) is not None:
            return first
        name = clean_name(cmd.name)
        members.check_password(cmd.password)
        stream = member_stream(name)
        existing = await self.store.read_stream(stream)
        new = members.register([r.event for r in existing], name=name, password=cmd.password,
                               now=self.clock())
        password_hash = await self.offload.run(self.hash_password, cmd.password)
        # Claimed before the append: of two look-alike names registering at once, one
        # claim fails. Claiming again for the same name is harmless (a retry, a replay).
        holder = await self.names.claim_member(name)
        if holder is not None:
            raise NameTakenError(f"the name {name!r} is taken: it looks like {holder!r}")
        try:
            return await self._append(stream, len(existing), new, c.MemberResult(name=name),
                                      meta, password_hash=password_hash)
        except ConcurrencyError as error:
            raise ConflictError(f"the name {name!r} is taken") from error
