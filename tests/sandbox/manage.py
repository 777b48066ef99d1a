"""Build and run the HAPI FHIR JPA sandbox (FHIR R4, in-memory H2) used by integration tests.

Python API::

    from tests.sandbox.manage import ensure_built, start

    jar = ensure_built()            # mvn package only when pom.xml/src changed
    with start() as sandbox:        # free port, waits for GET /fhir/metadata == 200
        client.get(f"{sandbox.base_url}/Patient")

CLI::

    python tests/sandbox/manage.py build   # build the jar if needed
    python tests/sandbox/manage.py run     # foreground server on $SANDBOX_PORT (default 8080)

Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType, TracebackType

try:  # POSIX only; the lock just serialises parallel builds (e.g. pytest-xdist workers).
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]

SANDBOX_DIR = Path(__file__).resolve().parent
POM = SANDBOX_DIR / "pom.xml"
SRC_DIR = SANDBOX_DIR / "src"
TARGET_DIR = SANDBOX_DIR / "target"
JAR = TARGET_DIR / "hapi-sandbox.jar"
BUILD_HASH_FILE = TARGET_DIR / ".build-hash"
BUILD_LOCK_FILE = TARGET_DIR / ".build-lock"
DEFAULT_LOG = TARGET_DIR / "sandbox.log"
RUN_DIR_PREFIX = "run-"

DEFAULT_PORT = 8080
HOST = "127.0.0.1"
START_TIMEOUT_S = 180.0
STOP_GRACE_S = 15.0
LOG_TAIL_LINES = 40

# Fast start-up on a small machine: C1 only, serial GC, class data sharing on (and the jar is
# run unpacked, see _extract).
JVM_FLAGS: tuple[str, ...] = (
    "-Xmx1g",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xshare:auto",
)


def source_hash() -> str:
    """SHA-256 over pom.xml and every file under src/ (paths and contents)."""
    digest = hashlib.sha256()
    files = [POM, *sorted(p for p in SRC_DIR.rglob("*") if p.is_file())]
    for path in files:
        digest.update(path.relative_to(SANDBOX_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _run_dir(build_hash: str) -> Path:
    return TARGET_DIR / f"{RUN_DIR_PREFIX}{build_hash[:12]}"


def _launcher(build_hash: str) -> Path:
    return _run_dir(build_hash) / JAR.name


def _jar_is_current(expected_hash: str) -> bool:
    if not JAR.is_file() or not BUILD_HASH_FILE.is_file():
        return False
    return BUILD_HASH_FILE.read_text(encoding="utf-8").strip() == expected_hash


def _is_up_to_date(expected_hash: str) -> bool:
    return _jar_is_current(expected_hash) and _launcher(expected_hash).is_file()


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    TARGET_DIR.mkdir(parents=True, exist_ok=True)
    with BUILD_LOCK_FILE.open("a+", encoding="utf-8") as lock:
        if fcntl is not None:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _run_checked(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        tail = "\n".join(output[-LOG_TAIL_LINES:])
        msg = f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{tail}"
        raise RuntimeError(msg)


def _maven_package() -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        msg = "Maven ('mvn') is not on PATH; it is needed to build the sandbox"
        raise RuntimeError(msg)
    _run_checked(
        [mvn, "-q", "-B", "-f", str(POM), "package", "-DskipTests"], "Building the HAPI sandbox"
    )
    if not JAR.is_file():
        msg = f"Maven succeeded but {JAR} is missing"
        raise RuntimeError(msg)


def _extract(build_hash: str) -> None:
    """Unpack the fat jar (Spring Boot 'tools' jar mode): starts faster than nested jars.

    Each build gets its own directory, so a rebuild never rewrites files under a running JVM.
    """
    staging = TARGET_DIR / f".extract-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    _run_checked(
        [
            _java_executable(),
            "-Djarmode=tools",
            "-jar",
            str(JAR),
            "extract",
            "--destination",
            str(staging),
        ],
        "Extracting the HAPI sandbox jar",
    )
    target = _run_dir(build_hash)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    # Keep this build and the previous one (a sandbox from it may still be running).
    old = sorted(TARGET_DIR.glob(f"{RUN_DIR_PREFIX}*"), key=lambda p: p.stat().st_mtime)
    for stale in [p for p in old if p != target][:-1]:
        shutil.rmtree(stale, ignore_errors=True)


def ensure_built(*, force: bool = False) -> Path:
    """Build the executable jar unless it is already built from the current sources.

    The stamp ``target/.build-hash`` holds :func:`source_hash` of the last successful build;
    ``mvn package`` runs only when the jar is missing or the hash differs (or ``force``).
    The jar is also unpacked once into ``target/run-<hash>/`` (see :func:`launcher_jar`).
    Returns the path of ``target/hapi-sandbox.jar``. Raises ``RuntimeError`` if Maven fails.
    """
    expected = source_hash()
    if not force and _is_up_to_date(expected):
        return JAR
    with _build_lock():
        if force or not _jar_is_current(expected):
            _maven_package()
            BUILD_HASH_FILE.write_text(expected + "\n", encoding="utf-8")
        if not _launcher(expected).is_file():  # never re-extract under a running JVM
            _extract(expected)
    return JAR


def launcher_jar() -> Path:
    """The unpacked launcher jar that :class:`Sandbox` runs (builds first if needed)."""
    ensure_built()
    return _launcher(source_hash())


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    """True when a server could listen on ``port`` now.

    The probe binds as the server will (Tomcat sets ``SO_REUSEADDR``): without it, connections of
    a sandbox that just stopped, still in TIME_WAIT, would make a free port look taken for a
    minute.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError:
        return "(no log)"


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _terminate_with_parent() -> None:
    """Runs in the child before exec: Linux sends it SIGTERM when the parent dies.

    Keeps a killed test run from leaving ~1 GB JVMs behind. Note that the "parent" is the
    thread that started the process, so start sandboxes from a long-lived (e.g. the main) thread.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
    java = shutil.which("java")
    if java is None:
        msg = "No 'java' found (set JAVA_HOME or put a JDK 17+ on PATH)"
        raise RuntimeError(msg)
    return java


class Sandbox:
    """One HAPI FHIR sandbox process. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        port: int | None = None,
        *,
        jar: Path | None = None,
        log_path: Path | None = None,
        timeout: float = START_TIMEOUT_S,
    ) -> None:
        self.port: int = port if port is not None else free_port()
        self.jar: Path | None = jar
        self.log_path: Path = log_path if log_path is not None else DEFAULT_LOG
        self.timeout: float = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def base_url(self) -> str:
        """FHIR base URL, e.g. ``http://127.0.0.1:8080/fhir`` (no trailing slash)."""
        return f"http://{HOST}:{self.port}/fhir"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        """Launch the server and block until ``GET /fhir/metadata`` returns 200."""
        if self.running:
            return self
        jar = self.jar if self.jar is not None else launcher_jar()
        if not _port_is_free(self.port):
            msg = f"Cannot start the HAPI sandbox: {HOST}:{self.port} is in use"
            raise RuntimeError(msg)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SANDBOX_PORT": str(self.port)}
        cmd = [_java_executable(), *JVM_FLAGS, "-jar", str(jar)]
        began = time.monotonic()
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the fd
            # preexec_fn only calls prctl(2); safe enough even with threads around.
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(SANDBOX_DIR),
                preexec_fn=_terminate_with_parent if sys.platform == "linux" else None,
            )
        try:
            self._wait_until_ready(began)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _wait_until_ready(self, began: float) -> None:
        deadline = began + self.timeout
        url = f"{self.base_url}/metadata"
        while True:
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                msg = (
                    f"HAPI sandbox exited with code {code} before it was ready "
                    f"(port {self.port}); last {LOG_TAIL_LINES} lines of {self.log_path}:\n"
                    f"{_tail(self.log_path)}"
                )
                raise RuntimeError(msg)
            if _metadata_ok(url):
                return
            if time.monotonic() > deadline:
                msg = (
                    f"HAPI sandbox did not answer 200 on {url} within {self.timeout:.0f} s; "
                    f"last {LOG_TAIL_LINES} lines of {self.log_path}:\n{_tail(self.log_path)}"
                )
                raise RuntimeError(msg)
            time.sleep(0.25)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the JVM is still alive after 15 s."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _metadata_ok(url: str) -> bool:
    request = urllib.request.Request(url, headers={"Accept": "application/fhir+json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(response.status == HTTPStatus.OK)
    except (urllib.error.URLError, OSError):
        return False


def start(port: int | None = None) -> Sandbox:
    """Build if needed, start a sandbox (on a free port when ``port`` is None) and return it."""
    return Sandbox(port).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    build_cmd = sub.add_parser("build", help="build target/hapi-sandbox.jar if needed")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if up to date")
    sub.add_parser("run", help="run in the foreground on $SANDBOX_PORT (default 8080)")
    args = parser.parse_args(argv)

    if args.command == "build":
        began = time.monotonic()
        jar = ensure_built(force=args.force)
        sys.stdout.write(f"{jar} ({time.monotonic() - began:.1f} s)\n")
        return 0

    port = int(os.environ.get("SANDBOX_PORT", str(DEFAULT_PORT)))

    def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_sigterm)
    sandbox = Sandbox(port)
    try:
        ensure_built()
        sandbox.start()
        sys.stdout.write(f"{sandbox.base_url}\n")
        sys.stdout.write(
            f"HAPI FHIR sandbox ready in {sandbox.startup_seconds:.1f} s; "
            f"log: {sandbox.log_path}; Ctrl-C to stop\n"
        )
        sys.stdout.flush()
        assert sandbox.process is not None
        sandbox.process.wait()
    except KeyboardInterrupt:
        return 0
    else:
        sys.stderr.write(f"HAPI sandbox exited unexpectedly; see {sandbox.log_path}\n")
        return 1
    finally:
        sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
