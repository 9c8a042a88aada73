"""A TcpProxy in a process of its own: `python -m tests.ha.proxy_process TARGET_PORT PORT`.

The PostgreSQL traffic of four services goes through it; in the test's own process it would
share one interpreter lock with the load client and slow both. SIGUSR1 stalls it (a black
hole), SIGUSR2 lets traffic through again, SIGTERM ends it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading

from tests.support.polling import eventually_sync
from tests.support.processes import ROOT, free_port
from tests.support.tcp_proxy import TcpProxy


class ProxyProcess:
    """The parent's handle on one proxy process."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.ha.proxy_process", str(target_port), str(self.port)],
            cwd=ROOT,
        )
        eventually_sync(self._listening, timeout=30, interval=0.1, what="the proxy listening")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the proxy exited with {self.proc.returncode}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stall(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)

    def restore(self) -> None:
        self.proc.send_signal(signal.SIGUSR2)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main() -> None:
    target_port, port = int(sys.argv[1]), int(sys.argv[2])
    proxy = TcpProxy("127.0.0.1", target_port)
    proxy.port = port
    proxy.start()
    done = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: proxy.stall())
    signal.signal(signal.SIGUSR2, lambda *_: proxy.restore())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    proxy.close()


if __name__ == "__main__":
    main()
