"""Three RabbitMQ nodes clustered together, beside (never touching) the machine's own node.

Each node has its own node name, AMQP and distribution ports, data, log, pid and config files
under a temporary folder owned by the `rabbitmq` user, and runs as that user with the machine
node's Erlang cookie (its HOME), so that rabbitmqctl reaches it. Nodes 2 and 3 join node 1
with `rabbitmqctl join_cluster`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.ha.system import as_user, chown_tree, kill_group, run, start
from tests.support.polling import eventually_sync
from tests.support.processes import free_port

USER = "rabbitmq"
SERVER = os.environ.get("HA_RABBITMQ_SERVER", "/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = os.environ.get("HA_RABBITMQCTL", "/usr/lib/rabbitmq/bin/rabbitmqctl")
BOOT_TIMEOUT_S = 120.0
DLX_CONFIRM_TIMEOUT_MS = 10_000


@dataclass
class RabbitNode:
    index: int
    name: str
    folder: Path
    amqp_port: int
    dist_port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    def env(self) -> dict[str, str]:
        return {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "rabbit.pid"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            # Not the machine's rabbitmq-env.conf (it names the machine's node).
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            # Three nodes share two cores with everything else: one scheduler each, and no
            # scheduler busy-waiting.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-kernel inet_dist_use_interface {127,0,0,1} "
                "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none"
            ),
        }

    def prepare(self) -> None:
        for sub in ("mnesia", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            "loopback_users.guest = true\n"
            # The machine is shared: do not stop publishers when its disk or memory look low.
            "disk_free_limit.absolute = 50MB\n"
            "vm_memory_high_watermark.relative = 0.8\n"
        )
        # What docs/reliability.md recommends for a cluster: a quorum queue's at-least-once
        # dead-letter worker re-sends what its target has not confirmed after this long
        # (default 3 minutes). After the target's leader is killed, the worker's sends go to
        # the dead leader until then: the retries waiting in a delay queue are stranded.
        timeout = f"{{dead_letter_worker_publisher_confirm_timeout, {DLX_CONFIRM_TIMEOUT_MS}}}"
        (self.folder / "advanced.config").write_text(f"[{{rabbit, [{timeout}]}}].\n")
        (self.folder / "enabled_plugins").write_text("[].\n")
        (self.folder / "rabbitmq-env.conf").write_text("")

    def start(self) -> None:
        # At a lower CPU priority than the services: in a real cluster the nodes have machines
        # of their own; here a node's boot (seconds of CPU) would starve the API under test.
        command = ["nice", "-n", "10", *as_user(USER, [SERVER], self.env())]
        self.proc = start(command, self.folder / "server.out")

    def wait_amqp(self, timeout: float = BOOT_TIMEOUT_S) -> None:
        def listening() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log_tail()}")
            with socket.socket() as s:
                s.settimeout(1)
                return s.connect_ex(("127.0.0.1", self.amqp_port)) == 0

        eventually_sync(listening, timeout=timeout, interval=0.5, what=f"{self.name} listening")

    def ctl(self, *args: str, timeout: float = 90) -> str:
        return run(as_user(USER, [CTL, "-q", "-n", self.name, *args]), timeout=timeout)

    def kill(self) -> None:
        """kill -9, the whole node (beam and its helpers)."""
        kill_group(self.proc, signal.SIGKILL)
        self.proc = None

    def stop(self) -> None:
        """A graceful stop (SIGTERM: the Erlang VM shuts the node down in order)."""
        kill_group(self.proc, signal.SIGTERM)
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        path = self.folder / "server.out"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RabbitCluster:
    def __init__(self, root: Path, size: int = 3) -> None:
        tag = f"{os.getpid()}"
        self.nodes = [
            RabbitNode(
                i, f"payouts-ha{i}-{tag}@localhost", root / f"rabbit{i}", free_port(), free_port()
            )
            for i in range(1, size + 1)
        ]
        self.root = root

    @property
    def urls(self) -> str:
        """AMQP_URL for the services: every node, comma-separated."""
        return ",".join(node.url for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.prepare()
        chown_tree(self.root, USER)
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_amqp()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("reset")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
        self.wait_members(len(self.nodes))

    def running_members(self, via: RabbitNode | None = None) -> list[str]:
        via = via or self.up_nodes()[0]
        status = json.loads(via.ctl("cluster_status", "--formatter", "json"))
        return list(status.get("running_nodes", []))

    def wait_members(self, count: int, timeout: float = BOOT_TIMEOUT_S) -> None:
        eventually_sync(
            lambda: len(self.running_members()) == count,
            timeout=timeout,
            interval=1.0,
            what=f"{count} running RabbitMQ nodes",
        )

    def up_nodes(self) -> list[RabbitNode]:
        return [node for node in self.nodes if node.proc is not None]

    def node_named(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if node.name == name)

    def leader_of(self, queue: str) -> RabbitNode:
        rows = json.loads(
            self.up_nodes()[0].ctl("list_queues", "name", "leader", "--formatter", "json")
        )
        leader = next(row["leader"] for row in rows if row["name"] == queue)
        return self.node_named(leader)

    def restart(self, node: RabbitNode) -> None:
        node.start()
        node.wait_amqp()

    def close(self) -> None:
        for node in self.nodes:
            kill_group(node.proc, signal.SIGKILL)
            node.proc = None
