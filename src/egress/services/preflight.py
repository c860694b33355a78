"""What a process checks before it serves or works: that its key rings fit the secrets and
tokens other processes sealed and signed in the shared metadata database.

A secret ring that opens none of the stored secrets is the wrong ring (a key generated into
this machine's data dir, a missing or mistyped EGRESS_SECRET_KEYS): the process refuses to
start. As a worker it would otherwise claim every run of a connection with a password and fail
it — runs that a correctly configured worker would have completed. A ring that opens some
secrets but not all is most likely missing a retired key: that is logged as an error and the
process starts, since refusing would stop every connection it can serve; the runs of the others
fail naming the setting.
"""

from __future__ import annotations

import logging

from egress.container import Container
from egress.crypto import secret_ring_source

log = logging.getLogger(__name__)
# Connection ids quoted in the message: enough to find them, not a wall of ids.
SHOWN_IDS = 5


class NotReady(Exception):
    """The process must not start; the message says what to change."""


def check_key_rings(c: Container) -> None:
    sealed = c.connections.sealed_secrets()
    unreadable = [cid for cid, token in sealed if not c.secret_box.can_open(token)]
    if unreadable:
        shown = ", ".join(unreadable[:SHOWN_IDS]) + (", …" if len(unreadable) > SHOWN_IDS else "")
        message = (
            f"the secrets of {len(unreadable)} of {len(sealed)} connections cannot be opened "
            f"with this process's secret key ring, from {secret_ring_source(c.settings)}: "
            "every process sharing the metadata database needs the same EGRESS_SECRET_KEYS "
            f"(connections {shown})"
        )
        if len(unreadable) == len(sealed):
            raise NotReady(message)
        log.error("%s; their runs will fail", message)
    known = {key.id for key in c.signing.keys}
    unknown = sorted(c.workspaces.token_key_ids() - known)
    if unknown:
        log.error(
            "API tokens were signed with key id(s) %s, which EGRESS_SIGNING_KEYS of this process "
            "lacks: they are refused here. Every process sharing the metadata database needs "
            "the same EGRESS_SIGNING_KEYS",
            ", ".join(unknown),
        )
