"""Run a real `mitmdump` subprocess with the addon, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "addon" / "ai_proxy.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Mitmdump:
    """mitmdump with the addon. `modes` are mitmproxy --mode specs without the @port part; each gets a port."""

    def __init__(
        self,
        workdir: Path,
        rules: str,
        modes: list[str] | None = None,
        env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
        scripts: list[Path] | None = None,
        with_addon: bool = True,
        recordings: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.confdir = workdir / "conf"
        # Several proxies may share one folder. (A second --set of one addon option would leave mitmproxy
        # silently ignoring them all: the folder is set once, here.)
        self.recordings = recordings or workdir / "recordings"
        self.rules_path = workdir / "rules.yaml"
        self.rules_path.write_text(rules)
        self.log_path = workdir / "mitmdump.log"
        self.modes = modes or ["regular"]
        self.ports = free_ports(len(self.modes))
        self.env = {**os.environ, **(env or {})}
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
            self.env.pop(var, None)
        self.extra_args = extra_args or []
        self.scripts = scripts or []
        self.with_addon = with_addon  # False: plain mitmdump, the baseline of the benchmarks
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ca(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def port(self, mode_prefix: str) -> int:
        for mode, port in zip(self.modes, self.ports, strict=True):
            if mode.startswith(mode_prefix):
                return port
        raise KeyError(mode_prefix)

    def command(self) -> list[str]:
        cmd = [str(MITMDUMP), "--listen-host", "127.0.0.1", "--set", f"confdir={self.confdir}"]
        for mode, port in zip(self.modes, self.ports, strict=True):
            cmd += ["--mode", f"{mode}@{port}"]
        if self.with_addon:
            cmd += ["-s", str(ENTRY)]
        for script in self.scripts:
            cmd += ["-s", str(script)]
        if self.with_addon:
            cmd += ["--set", f"ai_rules={self.rules_path}", "--set", f"ai_recordings={self.recordings}"]
        return cmd + self.extra_args

    def start(self, timeout: float = 30.0) -> Mitmdump:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mitmdump exited with {self.proc.returncode}:\n{self.log()}")
            if self.log().count("listening at") >= len(self.modes) and self.ca.exists():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mitmdump did not start within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def records(self) -> list[dict]:
        import json

        out = []
        for path in sorted(self.recordings.glob("*.jsonl")):
            out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return out

    def wait_records(self, count: int, timeout: float = 10.0) -> list[dict]:
        """Records are written by a background thread: wait until `count` are on disk."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.records()
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.02)

    def record_with(self, marker: str, timeout: float = 10.0) -> dict:
        """The audit record whose payload holds `marker` (records are written by a background thread)."""
        import json

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records():
                if marker in json.dumps(record.get("payload", {})):
                    return record
            time.sleep(0.02)
        raise AssertionError(f"no audit record holds {marker!r}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@contextmanager
def running(proxy: Mitmdump, *upstreams: Any) -> Iterator[Mitmdump]:
    """`proxy` started; on exit it is stopped and the fake upstreams it talks to are closed."""
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
        for upstream in upstreams:
            upstream.close()


def no_machine_aws(workdir: Path) -> dict[str, str]:
    """Environment that keeps the proxy's AWS credential chain off this machine's set-up and instance metadata."""
    return {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
    }
