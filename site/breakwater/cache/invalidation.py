"""Invalidation registered during a transaction and carried out after its commit.

``invalidate(session, "articles", "article:x")`` records namespaces on the session; after the
commit (never before: a reader could refill from the old rows) their generations move, tagged
with the commit's causal token, and the bump's sequence number joins the request's causal state so
the publisher's next reads skip any local tier that has not seen it. A rollback forgets them.
"""

from __future__ import annotations

from flask import has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from breakwater import extensions
from breakwater.database import causal

_KEY = "breakwater.cache_bumps"


def invalidate(session: Session, *namespaces: str) -> None:
    session.info.setdefault(_KEY, set()).update(namespaces)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    namespaces = session.info.pop(_KEY, None)
    if namespaces and has_app_context():
        state = causal.state()
        seq = extensions.cache().bump(*sorted(namespaces), token=state.token)
        state.cache_seq = max(state.cache_seq, seq)
        # Higher layers (static pages) react to the same commit without this module knowing them.
        for hook in extensions.after_invalidate():
            hook(tuple(sorted(namespaces)), state.token, seq)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)
