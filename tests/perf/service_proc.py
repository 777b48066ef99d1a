"""The service as a real uvicorn process (or several workers), for scale-out tests and benchmarks.

Configured through ``KETAMINE_*`` environment variables only, as a deployment would be, and run
from an empty directory so no ``.env`` file sneaks in. Standard library plus httpx.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import httpx

__all__ = ["ServiceProcess", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class ServiceProcess:
    """``uvicorn service.main:create_app --factory``; :attr:`base_url` once :meth:`start` ends."""

    def __init__(self, env: dict[str, str], *, workers: int = 1, port: int | None = None,
                 log: Path | None = None) -> None:
        self.env = env
        self.workers = workers
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._cwd = tempfile.TemporaryDirectory(prefix="ketamine-service-")

    def start(self, timeout: float = 90) -> Self:
        command = [sys.executable, "-m", "uvicorn", "service.main:create_app", "--factory",
                   "--host", "127.0.0.1", "--port", str(self.port), "--workers",
                   str(self.workers), "--log-level", "warning", "--no-access-log"]
        output = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, cwd=self._cwd.name, stdout=output,
                                        stderr=subprocess.STDOUT,
                                        env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode} "
                                   f"(log: {self.log})")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the service did not answer /healthz in time")
            time.sleep(0.1)
        if self.workers > 1:  # every worker up, not only the first
            while len(self.pids()) < self.workers + 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
        return self

    def pids(self) -> list[int]:
        """The uvicorn process and its workers (multiprocessing helpers included)."""
        if self.process is None:
            return []
        return [self.process.pid, *_children(self.process.pid)]

    def rss_mib(self) -> float:
        """Resident memory now, summed over the processes."""
        return sum(_status_kib(pid, "VmRSS") for pid in self.pids()) / 1024

    def peak_rss_mib(self) -> float:
        """High-water mark of resident memory (``VmHWM``), summed over the processes."""
        return sum(_status_kib(pid, "VmHWM") for pid in self.pids()) / 1024

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._cwd.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
