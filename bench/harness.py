"""What every bench script shares: process CPU time, ports, percentiles, and the children it starts and waits for
(all stopped on exit, whatever the exit). Standard library only."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

# ----------------------------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the bench process dies (even by SIGKILL), so nothing lingers."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class BenchError(Exception):
    pass


class Processes:
    """Every child the bench starts; all are stopped on exit, whatever the exit."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path | None]] = []

    def start(self, name: str, cmd: list[str], log: Path | None, **kw: Any) -> subprocess.Popen[bytes]:
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        try:
            p = subprocess.Popen(
                cmd,
                stdin=kw.pop("stdin", subprocess.DEVNULL),
                stdout=kw.pop("stdout", out),
                stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                env=child_env(),
                start_new_session=True,  # Ctrl-C reaches the bench only; it stops the children itself
                preexec_fn=_die_with_parent,
                **kw,
            )
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
        self.procs.append((name, p, log))
        return p

    def log_tail(self, p: subprocess.Popen[bytes], lines: int = 25) -> str:
        for _, q, log in self.procs:
            if q is p and log and log.exists():
                return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop_all(self) -> None:
        for _, p, _ in reversed(self.procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        deadline = time.monotonic() + 5
        for _, p, _ in reversed(self.procs):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()
        self.procs.clear()


def wait_listening(procs: Processes, p: subprocess.Popen[bytes], name: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise BenchError(f"{name} exited with code {p.returncode} before listening:\n{procs.log_tail(p)}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{name} did not listen on port {port} within {timeout:.0f} s:\n{procs.log_tail(p)}")


def http_call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = HTTPConnection(HOST, port, timeout=10)
    try:
        headers = {"content-type": "application/json", "authorization": "Bearer sk-bench-client-key"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()
