"""Every metric the source registers and every field an access-log line carries is documented: a
new one without its docs fails here (docs/operations.md "Metrics", docs/dataplane.md "Access
log")."""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path

import pytest

from edgeproxy.authz.policy import Decision
from edgeproxy.dataplane.http.records import AccessRecord, ConnectionFacts
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.observe import AccessLine, HandshakeLog, RequestLog
from edgeproxy.domain.model import Network
from edgeproxy.tls.refusal import Refusal
from edgeproxy.tls.session import Reason

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "edgeproxy"
# The metric constructors of prometheus_client: (name, help, labels...) or labels=[...].
CONSTRUCTORS = {"Counter", "Gauge", "Histogram", "CounterMetricFamily", "GaugeMetricFamily"}


def registered_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name → (constructor, label names) of every metric constructed in src with a literal name."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if node.func.id not in CONSTRUCTORS or not node.args:
                continue
            name = node.args[0]
            if not isinstance(name, ast.Constant) or not str(name.value).startswith("edgeproxy_"):
                continue
            labels_node = next((k.value for k in node.keywords if k.arg == "labels"), None)
            if labels_node is None and len(node.args) > 2:
                labels_node = node.args[2]
            labels = ast.literal_eval(labels_node) if labels_node is not None else ()
            found[str(name.value)] = (node.func.id, tuple(labels))
    return found


def metrics_table_rows() -> dict[str, str]:
    """Exposed metric name → its row in docs/operations.md's tables."""
    rows = {}
    for line in (ROOT / "docs" / "operations.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `(edgeproxy_[a-z_]+)` \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_the_source_registers_the_metrics_this_test_reads() -> None:
    """The scan above finds the data plane's and the admin role's metrics (it could miss all)."""
    found = registered_metrics()
    assert {"edgeproxy_tls_handshakes", "edgeproxy_ca_set_desired_version"} <= set(found)
    assert found["edgeproxy_tls_handshakes"][1] == (
        "edge_certificate",
        "network",
        "result",
        "reason",
    )
    exposed = {family.name for family in Metrics().registry.collect()}
    assert exposed <= set(found)


def test_every_metric_and_its_labels_are_documented() -> None:
    rows = metrics_table_rows()
    undocumented = []
    for name, (constructor, labels) in sorted(registered_metrics().items()):
        exposed = f"{name}_total" if constructor.startswith("Counter") else name
        row = rows.get(exposed)
        if row is None:
            undocumented.append(exposed)
            continue
        missing = [label for label in labels if label not in row]
        assert not missing, f"{exposed}: labels {missing} not in its docs/operations.md row"
    assert not undocumented, f"not in docs/operations.md's metrics tables: {undocumented}"


def access_log_section() -> str:
    text = (ROOT / "docs" / "dataplane.md").read_text(encoding="utf-8")
    start = text.index("## Access log")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.set_level(logging.INFO, logger="edgeproxy.access")
    return []


def fields_of(line: str) -> list[str]:
    return [k for k in json.loads(line) if k not in ("level", "logger", "message")]


def test_every_field_of_a_refused_handshake_line_is_documented(lines: list[str]) -> None:
    log = HandshakeLog(Metrics(), Network.STAGING, AccessLine(lines.append))
    refusal = Refusal(Reason.UNKNOWN_CA, "certificate verify failed", "api.test", "api")
    log.handshake_failed(refusal, 0.01, ("127.0.0.1", 40000))
    (line,) = lines
    fields = fields_of(line)
    assert {"client_subject", "revoked_at", "repeated"} <= set(fields)
    docs = access_log_section()
    assert [f for f in fields if f"`{f}`" not in docs] == []


def test_every_field_of_a_request_line_is_documented(lines: list[str]) -> None:
    facts = ConnectionFacts(
        client_address="127.0.0.1",
        client_port=40000,
        edge_certificate="api",
        sni="api.test",
        tls_version="TLSv1.3",
        client_subject="CN=alice",
        client_serial="1f",
        client_fingerprint_sha256="aa" * 32,
        verify_result="SUCCESS",
        verify_reason=None,
        ca_set="partners",
        ca_set_version=1,
    )
    record = AccessRecord(
        1.0e9, facts, "GET", "/", 200, 0, 10, 0.01, 0.005, "good", Decision("allow", "0", None)
    )
    RequestLog(Metrics(), AccessLine(lines.append)).request_done(record)
    (line,) = lines
    fields = fields_of(line)
    assert {"client_fingerprint_sha256", "authorization_rule", "started"} <= set(fields)
    docs = access_log_section()
    assert [f for f in fields if f"`{f}`" not in docs] == []
