"""Real Redis topologies on loopback ports, for the fleet tests and the soak benchmark:
a 3-primary / 3-replica Redis Cluster and a 1-primary / 2-replica set watched by 3 sentinels,
each in its own directory, started with Debian's `redis-server` / `redis-sentinel`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

SERVER = "redis-server"
SENTINEL_SERVICE = "fleet"
NODE_TIMEOUT_MS = 1000  # cluster-node-timeout and down-after-milliseconds: failovers in ~2 s


def binaries() -> str | None:
    """None when the binaries are here, else what is missing."""
    missing = [name for name in (SERVER, "redis-cli") if shutil.which(name) is None]
    return ", ".join(missing) + " not installed" if missing else None


def free_ports(count: int) -> list[int]:
    """Ports free now, with their cluster bus port (port + 10000) free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port > 55000 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what} ({last!r})")


def replicas_in_sync(ports) -> bool:
    """Every replica among `ports` has finished its sync with its primary: killing a primary
    before then would promote a replica without the data (the tests count on it)."""
    for port in ports:
        node = redis.Redis(port=port, socket_timeout=0.5, decode_responses=True)
        try:
            info = node.info("replication")
        finally:
            node.close()
        if info["role"] == "slave" and (
            info["master_link_status"] != "up" or info["master_sync_in_progress"]
        ):
            return False
    return True


def ping(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=0.5)
    try:
        return bool(client.ping())
    finally:
        client.close()


class _Processes:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.args: dict[int, list[str]] = {}

    def spawn(self, port: int, args: list[str]) -> None:
        log = (self.root / f"{port}.log").open("ab")
        self.args[port] = args
        self.procs[port] = subprocess.Popen(args, cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait(lambda: ping(port), 10, f"redis on {port}")

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait(5)

    def restart(self, port: int) -> None:
        self.spawn(port, self.args[port])

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()


def _server_args(port: int, *extra: str) -> list[str]:
    return [SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "no", "--enable-debug-command", "local",
            "--repl-diskless-sync-delay", "0", *extra]  # fmt: skip


class RedisClusterSet(_Processes):
    """Three primaries, each with one replica."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.ports = free_ports(6)
        for port in self.ports:
            self.spawn(port, _server_args(
                port, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--dbfilename", f"dump-{port}.rdb",
                "--cluster-replica-validity-factor", "0",
            ))  # fmt: skip
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        self.wait_healthy()

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def client(self) -> redis.RedisCluster:
        live = next(p for p in self.ports if p in self.procs)
        return redis.RedisCluster(host="127.0.0.1", port=live, socket_timeout=2)

    def wait_healthy(self, timeout: float = 20) -> None:
        def ok() -> bool:
            for port in self.procs:
                node = redis.Redis(port=port, socket_timeout=0.5)
                try:
                    info = node.cluster("info")
                    if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) < 6:
                        return False
                finally:
                    node.close()
            return True

        wait(ok, timeout, "cluster_state:ok on every node")
        wait(lambda: replicas_in_sync(self.procs), timeout, "every replica in sync")

    def wait_recovered(self, timeout: float = 20) -> None:
        """Healthy, and every primary has its replica again."""
        self.wait_healthy(timeout)

        def paired() -> bool:
            node = redis.Redis(port=next(iter(self.procs)), socket_timeout=1)
            try:
                return all(len(entry) >= 4 for entry in node.cluster("slots"))
            finally:
                node.close()

        wait(paired, timeout, "a replica for every primary")
        wait(lambda: replicas_in_sync(self.procs), timeout, "every replica in sync")

    def primary_of(self, key: str) -> int:
        """The port of the primary serving `key`'s slot."""
        node = redis.Redis(port=next(iter(self.procs)), socket_timeout=1)
        try:
            slot = node.cluster("keyslot", key)
            for start, end, primary, *_ in node.cluster("slots"):
                if start <= slot <= end:
                    return int(primary[1])
        finally:
            node.close()
        raise LookupError(key)

    def replica_of(self, primary: int) -> int:
        node = redis.Redis(port=primary, socket_timeout=1)
        try:
            return int(node.info("replication")["slave0"]["port"])
        finally:
            node.close()

    def failover(self, key: str) -> tuple[int, int]:
        """CLUSTER FAILOVER on the replica of `key`'s primary: (old primary, new primary)."""
        primary = self.primary_of(key)
        replica = self.replica_of(primary)
        node = redis.Redis(port=replica, socket_timeout=2)
        try:
            node.execute_command("CLUSTER", "FAILOVER")
        finally:
            node.close()
        wait(lambda: self.primary_of(key) == replica, 15, "the replica to take over")
        return primary, replica


class RedisSentinelSet(_Processes):
    """One primary, two replicas, three sentinels monitoring it as `fleet`."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        try:
            self._start(root)
        except BaseException:
            self.stop()
            raise

    def _start(self, root: Path) -> None:
        self.data_ports = free_ports(3)
        self.sentinel_ports = free_ports(3)
        primary = self.data_ports[0]
        self.spawn(primary, _server_args(primary, "--dbfilename", f"dump-{primary}.rdb"))
        for port in self.data_ports[1:]:
            self.spawn(port, _server_args(port, "--replicaof", "127.0.0.1", str(primary),
                                          "--dbfilename", f"dump-{port}.rdb"))  # fmt: skip
        command = [shutil.which("redis-sentinel")] if shutil.which("redis-sentinel") else [SERVER]
        for port in self.sentinel_ports:
            conf = root / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {root}\n"
                f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_SERVICE} {NODE_TIMEOUT_MS}\n"
                f"sentinel failover-timeout {SENTINEL_SERVICE} 5000\n"
            )
            self.spawn(port, [*command, str(conf), *(["--sentinel"] if command == [SERVER] else [])])
        wait(self._replicas_known, 20, "the sentinels to see both replicas")

    def _replicas_known(self) -> bool:
        if not replicas_in_sync([port for port in self.data_ports if port in self.procs]):
            return False
        for port in self.sentinel_ports:
            sentinel = redis.Redis(port=port, socket_timeout=0.5, decode_responses=True)
            try:
                primary = sentinel.sentinel_master(SENTINEL_SERVICE)
                if int(primary["num-slaves"]) < 2 or int(primary["num-other-sentinels"]) < 2:
                    return False
            finally:
                sentinel.close()
        return True

    def wait_recovered(self, timeout: float = 20) -> None:
        """The sentinels see one primary and two replicas again."""
        wait(self._replicas_known, timeout, "the sentinels to see both replicas")

    @property
    def url(self) -> str:
        return (
            "redis+sentinel://"
            + ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
            + "/"
            + SENTINEL_SERVICE
        )

    def primary(self) -> int:
        sentinel = redis.Redis(port=self.sentinel_ports[0], socket_timeout=1, decode_responses=True)
        try:
            _, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE)
            return int(port)
        finally:
            sentinel.close()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.primary(), socket_timeout=2)

    def failover(self) -> tuple[int, int]:
        """SENTINEL FAILOVER: (old primary, new primary)."""
        old = self.primary()
        sentinel = redis.Redis(port=self.sentinel_ports[0], socket_timeout=2)
        try:
            sentinel.execute_command("SENTINEL", "FAILOVER", SENTINEL_SERVICE)
        finally:
            sentinel.close()
        wait(lambda: self.primary() != old and self._role(self.primary()) == "master", 20, "a new primary")
        return old, self.primary()

    @staticmethod
    def _role(port: int) -> str:
        node = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
        try:
            return str(node.execute_command("ROLE")[0])
        finally:
            node.close()
