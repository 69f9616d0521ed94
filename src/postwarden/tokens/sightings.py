"""Where credentials are used from: the first use of one from a new address is an audit event.

A leaked token typically turns up from somewhere its owner never was; the event tells the
account when that happened, once per address rather than on every request.
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.identity import Actor, Credential
from postwarden.tokens.models import TokenSighting


def remember_address(session: Session, credential: Credential, token_id: int, ip: str) -> bool:
    """Keeps ``ip`` among the credential's addresses; True when it was not known yet."""
    if not ip:
        return False
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(TokenSighting)
        .values(credential=credential.value, token_id=token_id, ip=ip[:64])
        .on_conflict_do_nothing(index_elements=["credential", "token_id", "ip"])
        .returning(TokenSighting.token_id)
    )
    return inserted.first() is not None


def note_use(session: Session, actor: Actor) -> None:
    """Records the address the actor's credential is used from; its first use from an
    address (its very first use included) is ``credential.used_from_new_ip``."""
    if actor.token_id is None or not actor.context.ip:
        return
    first_use = not session.scalar(
        select(
            exists().where(TokenSighting.credential == actor.credential.value, TokenSighting.token_id == actor.token_id)
        )
    )
    if not remember_address(session, actor.credential, actor.token_id, actor.context.ip):
        return
    audit.record(
        session,
        actor,
        AuditAction.CREDENTIAL_USED_FROM_NEW_IP,
        account_id=actor.account_id,
        target_type=actor.credential.value,
        target_id=actor.token_id,
        target_label=actor.label,
        changes={"ip": {"before": None, "after": actor.context.ip[:64]}, "first_use": first_use},
    )
