"""``python -m livemesh bench --metrics-port N``: the option reaches the livemesh client, which
serves its metrics while it runs; a bad port or a missing exporter is a usage error (exit 2)."""

from __future__ import annotations

import argparse
import urllib.request

import pytest

from livemesh import telemetry
from livemesh.bench import cli, livemesh_client
from livemesh.bench.workload import WorkloadSpec


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_option_parses_and_crosses_to_the_client_in_the_spec() -> None:
    assert _args().metrics_port is None
    assert _args("--metrics-port", "9464").metrics_port == 9464
    spec = WorkloadSpec(url="ws://127.0.0.1:1", metrics_port=9464)
    assert WorkloadSpec.from_json(spec.to_json()).metrics_port == 9464


def test_a_bad_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(_args("--metrics-port", "0")) == 2
    assert cli.run(_args("--metrics-port", "70000")) == 2
    assert "--metrics-port must be a TCP port" in capsys.readouterr().err


def test_a_missing_exporter_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_have_prometheus_exporter", lambda: False)
    assert cli.run(_args("--metrics-port", "9464")) == 2
    assert "opentelemetry-exporter-prometheus" in capsys.readouterr().err


def test_the_client_serves_metrics_only_when_asked() -> None:
    before = telemetry.current()
    with livemesh_client._metrics(WorkloadSpec(url="ws://127.0.0.1:1")):
        assert telemetry.current() is before
    with livemesh_client._metrics(WorkloadSpec(url="ws://127.0.0.1:1", metrics_port=0)) as port:
        served = telemetry.current()
        assert served is not None and served is not before
        probe = telemetry.session_probe("s1", model="m-live")
        probe.opened()
        probe.move_done("go_away", 0.5)
        probe.closed()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    assert "livemesh_moves_total{" in text and 'livemesh_move_reason="goAway"' in text
    assert telemetry.current() is before
