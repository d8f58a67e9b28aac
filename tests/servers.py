"""Real uvicorn processes serving `--factory api.app:create_app`, for tests that need a socket: body
streaming, SIGKILL in the middle of writes, fuzzing over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.support import TODAY

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One uvicorn process on a fixed port; `kill` (SIGKILL) and `start` again at will."""

    def __init__(self, database_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "LOANFUND_DATABASE_URL": database_url,
            "LOANFUND_BUSINESS_DATE": TODAY,
            "LOANFUND_DB_POOL_SIZE": "4",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: a server that logs much would block on a full pipe nobody reads.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server object

    def start(self, timeout: float = 90) -> None:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app"),
                *("--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def output(self) -> str:
        """Everything the server (each start of it) wrote to stderr."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> str:
        """Stops the server; returns what it wrote to stderr."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.output()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
