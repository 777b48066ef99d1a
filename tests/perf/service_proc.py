"""The service as a real uvicorn process (or several workers), for scale-out tests and benchmarks.

Configured through ``KETAMINE_*`` environment variables only, as a deployment would be, and run
from an empty directory so no ``.env`` file sneaks in. Standard library plus httpx.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import IO, Self

from tests.servers import free_port

__all__ = ["ServiceProcess", "free_port"]

_STARTED = b"Application startup complete."
"""What uvicorn logs (at ``info``) when a worker has run the app's lifespan startup."""
_LISTENING = b"Uvicorn running on"
"""... and once its socket listens (after the single worker's startup; before several start)."""


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


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
                 log: Path | None = None, serve: bool = False) -> None:
        """``serve``: start it as ``ketamine-screen serve`` does (the protocol with its header
        deadline, connection limits), rather than with uvicorn's own command line."""
        self.env = env
        self.workers = workers
        self.serve = serve
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._last_lines: deque[bytes] = deque(maxlen=5)
        """The service's last lines, for the error when it exits before it is ready."""
        self._cwd = tempfile.TemporaryDirectory(prefix="ketamine-service-")

    def start(self) -> Self:
        """Start, and return once every worker has logged its startup (no polling, no sleep)."""
        command = [sys.executable, "-m", "uvicorn", "service.main:create_app", "--factory",
                   "--host", "127.0.0.1", "--port", str(self.port), "--workers",
                   str(self.workers), "--log-level", "info", "--no-access-log"]
        if self.serve:
            command = [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1",
                       "--port", str(self.port), "--workers", str(self.workers)]
        self.process = subprocess.Popen(command, cwd=self._cwd.name, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT,
                                        env={**os.environ, **self.env})
        ready = threading.Event()
        assert self.process.stdout is not None
        threading.Thread(target=self._relay, args=(self.process.stdout, ready),
                         daemon=True).start()
        ready.wait()
        if self.process.poll() is not None:
            said = b"".join(self._last_lines).decode(errors="replace").strip()
            raise RuntimeError(f"the service exited with {self.process.returncode} "
                               f"(log: {self.log}); it said: {said}")
        return self

    def _relay(self, output: IO[bytes], ready: threading.Event) -> None:
        """Copy the service's log to :attr:`log`; set ``ready`` when every worker started (or
        the process ended)."""
        started, listening = 0, False
        sink = self.log.open("ab") if self.log else None
        try:
            for line in output:
                self._last_lines.append(line)
                if sink is not None:
                    sink.write(line)
                    sink.flush()
                started += _STARTED in line
                listening = listening or _LISTENING in line
                if listening and started == self.workers:
                    ready.set()
        finally:
            ready.set()
            if sink is not None:
                sink.close()

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

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far, summed over the processes: what the service
        itself spent, whatever else shares the machine."""
        return sum(_cpu_ticks(pid) for pid in self.pids()) / os.sysconf("SC_CLK_TCK")

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
