"""Authorization in the HTTP layer (docs/dataplane.md): the binding's compiled rules paired with a
connection's client, and one decision per request.

`connection_policy` runs once per connection and `PeerPolicy.decide` once per request, for an
HTTP/1.1 exchange and an HTTP/2 stream alike; `refusal_status` says how a refused decision is
answered. The decision rides on the request's access record, where the access log and
`edgeproxy_authorization_decisions_total` read it (observe.py).
"""

from __future__ import annotations

from edgeproxy.authz.policy import INVALID_PATH, Decision, PeerPolicy
from edgeproxy.dataplane.http.identity import ClientIdentity
from edgeproxy.tls.session import TlsSession


def connection_policy(session: TlsSession, identity: ClientIdentity) -> PeerPolicy | None:
    """The binding's rules for this connection's client; None when the binding has none."""
    policy = session.edge.mutual_authentication.authorization
    if policy is None:
        return None
    reason = session.verify_reason
    return policy.for_peer(identity.peer, None if reason is None else reason.value)


def refusal_status(decision: Decision) -> int:
    """400 for a path the rules cannot match unambiguously, 403 for every other refusal."""
    return 400 if decision.reason == INVALID_PATH else 403
