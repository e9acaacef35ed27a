"""The example alert rules (deploy/prometheus/edgeproxy-alerts.yml) pass `promtool check rules`,
and `promtool test rules` shows each alert firing on the series that should fire it, and not on
their twins."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.tools import promtool

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "edgeproxy-alerts.yml"

UNIT_TESTS = Path(__file__).with_name("edgeproxy-alerts.test.yml")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60)


def test_the_rules_pass_promtool_check_rules() -> None:
    result = run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_promtool_check_rules_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(\n")
    assert run("check", "rules", str(broken)).returncode != 0


def test_the_alerts_fire_on_the_series_they_watch() -> None:
    result = run("test", "rules", str(UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    """The twin: the unit tests are able to fail (no store is down in those series)."""
    text = UNIT_TESTS.read_text().replace("../../deploy", str(RULES.parents[1]))
    wrong = "alertname: EdgeproxyStoreUnreachable"
    tests = tmp_path / "wrong.test.yml"
    tests.write_text(text.replace("alertname: EdgeproxyNodeNotApplying", wrong))
    assert run("test", "rules", str(tests)).returncode != 0
