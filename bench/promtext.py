"""Reading edgeproxy's /metrics exposition (prometheus_client's own text parser)."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                found.append((dict(sample.labels), sample.value))
    return found


def total(text: str, name: str, **labels: str) -> float:
    return sum(value for _, value in samples(text, name, **labels))


def handshake_failures(text: str) -> Counter[str]:
    """edgeproxy_tls_handshakes_total{result="failure"} by reason."""
    out: Counter[str] = Counter()
    for labels, value in samples(text, "edgeproxy_tls_handshakes_total", result="failure"):
        out[labels.get("reason", "")] += int(value)
    return out


def histogram(text: str, name: str) -> tuple[int, float, dict[float, int]]:
    """(count, sum, cumulative buckets by upper bound) of an unlabelled histogram."""
    buckets = {float(labels["le"]): int(value) for labels, value in samples(text, f"{name}_bucket")}
    return int(total(text, f"{name}_count")), total(text, f"{name}_sum"), buckets
