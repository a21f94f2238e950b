"""A real Prometheus server (Debian's `prometheus` package) scraping a test's aggregator."""

from __future__ import annotations

import shutil
from pathlib import Path

import requests

from tests.polling import wait_for
from tests.servers import ManagedProcess, free_port, service_env

PROMETHEUS = shutil.which("prometheus")


class PrometheusServer(ManagedProcess):
    """Scrapes `target` (host:port) every `interval`; data in a temporary directory."""

    def __init__(self, data_dir: Path, target: str, *, interval: str = "1s"):
        super().__init__("prometheus", data_dir, service_env(""))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = data_dir / "prometheus.yml"
        self.config.write_text(
            f"global: {{scrape_interval: {interval}, scrape_timeout: {interval}}}\n"
            "scrape_configs:\n"
            "  - job_name: loggregator\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )

    def start(self) -> None:
        self.spawn(
            [
                PROMETHEUS,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.data_dir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ]
        )
        wait_for(self._ready, message=f"Prometheus to be ready on {self.url}")

    def _ready(self) -> bool:
        if not self.running:
            raise AssertionError(f"prometheus exited with {self.process.returncode}:\n{self.log()}")
        try:
            return requests.get(f"{self.url}/-/ready", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def query(self, expression: str) -> float | None:
        """The value of an instant query that yields one series; None while it yields none."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10)
        response.raise_for_status()
        result = response.json()["data"]["result"]
        assert len(result) <= 1, f"{expression} yields {len(result)} series"
        return float(result[0]["value"][1]) if result else None
