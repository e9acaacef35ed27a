"""Authorization in the HTTP layer (docs/dataplane.md): the binding's compiled rules paired with a
connection's client, and one decision per request.

`connection_policy` runs once per connection (and again when a reload changes the binding's
rules: `ClientPolicy.authorization_changed`) and `PeerPolicy.decide` once per request, for an
HTTP/1.1 exchange and an HTTP/2 stream alike; `refusal_status` says how a refused decision is
answered. The decision rides on the request's access record, where the access log and
`edgeproxy_authorization_decisions_total` read it (observe.py).
"""

from __future__ import annotations

from cryptography import x509

from edgeproxy.authz.peer import peer_from_leaf
from edgeproxy.authz.policy import INVALID_PATH, Decision, PeerPolicy, Policy
from edgeproxy.dataplane.http.identity import ClientIdentity
from edgeproxy.tls.session import TlsSession, VerifyResult


def connection_policy(
    policy: Policy | None, session: TlsSession, identity: ClientIdentity
) -> PeerPolicy | None:
    """`policy` (the binding's rules, or newer ones a reload brought) paired with this
    connection's client; None without rules. The identity facts come with the connection's
    identity when its binding had rules from the start, else they are read here, once."""
    if policy is None:
        return None
    peer = identity.peer
    chain = session.peer_chain_der
    if peer is None and session.verify_result is VerifyResult.SUCCESS and chain:
        peer = peer_from_leaf(x509.load_der_x509_certificate(chain[0]), chain[0])
    reason = session.verify_reason
    return policy.for_peer(peer, None if reason is None else reason.value)


def refusal_status(decision: Decision) -> int:
    """400 for a path the rules cannot match unambiguously, 403 for every other refusal."""
    return 400 if decision.reason == INVALID_PATH else 403
