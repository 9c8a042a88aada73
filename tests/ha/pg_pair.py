"""A PostgreSQL primary with a streaming standby, and the failover a cluster manager performs.

Both run as the `postgres` user from `pg_config --bindir`, in folders of their own on their own
ports (the machine's PostgreSQL is untouched). Replication is synchronous
(synchronous_standby_names = '*', synchronous_commit = on): a commit is acknowledged once the
standby has it. While a node has no standby (between a failover and the old primary's return)
the manager turns synchronous replication off, as Patroni's non-strict synchronous mode does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.ha.system import as_user, chown_tree, run
from tests.support.polling import eventually_sync
from tests.support.processes import free_port

USER = "postgres"
SYNC_ON = "'*'"


def bindir() -> Path:
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@dataclass
class PgNode:
    name: str
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def tool(self, name: str, *args: str, timeout: float = 120) -> str:
        return run(as_user(USER, [str(bindir() / name), *args]), timeout=timeout)

    def init(self, settings: str = "") -> None:
        """initdb (trust, no fsync wait) with `settings` added to postgresql.conf."""
        self.tool(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
            "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# payouts make test-ha\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.folder}'\n"
                "max_connections = 200\n"
                "shared_buffers = '64MB'\n" + settings
            )

    def start(self) -> None:
        self.tool(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-o",
            f"-p {self.port}",
            "-w",
            "-t",
            "120",
            "start",
        )

    def stop_immediate(self) -> None:
        """A crash, as far as the data is concerned (no checkpoint, no goodbye to clients)."""
        self.tool("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop_quietly(self) -> None:
        run(
            as_user(
                USER, [str(bindir() / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
            ),
            check=False,
        )

    def promote(self) -> None:
        self.tool("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def server_pids(self) -> list[int]:
        """The postmaster and every backend it forked."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True
        ).stdout.split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> None:
        """A black hole: every server process stopped (SIGSTOP). Connections stay open and the
        kernel still accepts and acknowledges, but nothing answers, nothing is refused or
        reset: what clients see of a node behind a dropped route."""
        for pid in self.server_pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.server_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def sql(self, statement: str) -> object:
        async def go() -> object:
            conn = await asyncpg.connect(self.admin_url, timeout=10)
            try:
                return await conn.fetchval(statement)
            finally:
                await conn.close()

        return asyncio.run(go())

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.folder / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class PgPair:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes = [PgNode(f"pg{i}", root / f"pg{i}", free_port()) for i in (1, 2)]
        self.primary, self.standby = self.nodes

    def start(self) -> None:
        for node in self.nodes:
            node.folder.mkdir(parents=True)
        chown_tree(self.root, USER)
        primary, standby = self.nodes
        primary.init(
            "wal_level = replica\n"
            "max_wal_senders = 10\n"
            "wal_keep_size = '256MB'\n"
            "hot_standby = on\n"
            # pg_rewind needs hint bits in the WAL (or data checksums).
            "wal_log_hints = on\n"
            f"synchronous_standby_names = {SYNC_ON}\n"
            "synchronous_commit = on\n"
        )
        primary.start()
        self._base_backup(primary, standby)
        standby.start()
        self.wait_streaming(primary)

    def wait_streaming(self, primary: PgNode, timeout: float = 60) -> None:
        eventually_sync(
            lambda: (
                primary.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
                == 1
            ),
            timeout=timeout,
            interval=0.5,
            what=f"a standby streaming from {primary.name}",
        )

    def database_url(self, database: str, ports: list[int] | None = None) -> str:
        """The multi-host URL over both nodes (or the given ports, e.g. proxies)."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in (ports or [n.port for n in self.nodes]))
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"

    def crash_primary_and_promote(self) -> None:
        """kill the primary (immediate stop), promote the standby, run it unsynchronised until
        its standby is back (the window a cluster manager accepts to stay writable)."""
        old, new = self.primary, self.standby
        old.stop_immediate()
        new.promote()
        eventually_sync(
            lambda: new.sql("SELECT NOT pg_is_in_recovery()") is True,
            timeout=60,
            interval=0.2,
            what=f"{new.name} promoted",
        )
        self._set_sync(new, "''")
        self.primary, self.standby = new, old

    def rejoin_old_primary(self) -> None:
        """Rebuild the old primary from a new base backup of the new one, start it as its
        standby, then require synchronous replication again.

        Not pg_rewind: after an immediate stop it replays the crash and writes a shutdown
        checkpoint on the old timeline, right at the fork point, and then (PostgreSQL 15)
        reports "no rewind required"; the node cannot follow the new timeline. A base backup
        of this small database takes seconds.
        """
        new, old = self.primary, self.standby
        shutil.rmtree(old.data)
        self._base_backup(new, old)
        old.start()
        self.wait_streaming(new)
        self._set_sync(new, SYNC_ON)

    @staticmethod
    def _base_backup(source: PgNode, target: PgNode) -> None:
        target.tool(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(source.port),
            "-U",
            "postgres",
            "-D",
            str(target.data),
            "-X",
            "stream",
            "-R",
            "--no-sync",
            "--checkpoint=fast",  # not a checkpoint spread over minutes first
            "-d",
            f"application_name={target.name}",
        )

    def _set_sync(self, node: PgNode, names: str) -> None:
        node.sql(f"ALTER SYSTEM SET synchronous_standby_names = {names}")
        node.sql("SELECT pg_reload_conf()")

    def close(self) -> None:
        for node in self.nodes:
            if (node.data / "postmaster.pid").exists():
                with contextlib.suppress(OSError, ValueError):
                    node.thaw()  # a stopped server cannot shut down
            if node.data.exists():
                node.stop_quietly()
