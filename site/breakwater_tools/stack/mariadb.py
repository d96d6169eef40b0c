"""MariaDB nodes: data directories, users and GTID replication.

Administration goes through each node's unix socket as the operating-system user that owns
the stack (``unix_socket`` authentication), so no administrator password exists anywhere. Started as root, the
servers run as the service user (:mod:`breakwater_tools.stack.users`), which gets a socket account of its own for the
failover watcher; root keeps administering through root's.
"""

from __future__ import annotations

import pwd
import subprocess
import time
from contextlib import closing

import pymysql

from breakwater.settings import Settings
from breakwater_tools.stack.errors import StackError
from breakwater_tools.stack.layout import Layout, Node
from breakwater_tools.stack.programs import which
from breakwater_tools.stack.users import RunAs, current_user


def init_datadir(node: Node, run: RunAs | None = None) -> bool:
    """Create the system tables for a node once, as the user the server runs as; returns True when it was
    created now. Root's socket account stays the invoker's (root administers through it)."""
    if (node.datadir / "mysql").is_dir():
        return False
    node.datadir.mkdir(parents=True, exist_ok=True)
    (node.dir / "tmp").mkdir(exist_ok=True)
    as_user = {}
    if run is not None and run.switch:
        pw = pwd.getpwnam(run.name)
        as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    result = subprocess.run(
        [
            which("mariadb-install-db") or "mariadb-install-db",
            f"--defaults-file={node.cnf}",
            "--auth-root-authentication-method=socket",
            f"--auth-root-socket-user={current_user()}",
            "--skip-test-db",
        ],
        capture_output=True,
        text=True,
        cwd=node.dir,
        umask=0o027,
        **as_user,
    )
    if result.returncode != 0:
        raise StackError(
            f"mariadb-install-db failed for {node.name} ({result.stderr.strip()[-400:]}); "
            f"remove {node.datadir} or run `make reset`, then retry."
        )
    return True


def admin(node: Node, timeout: float = 2.0) -> pymysql.Connection:
    """An administrator connection through the node's socket as the OS user this process runs as."""
    return pymysql.connect(unix_socket=str(node.socket), user=current_user(), connect_timeout=timeout, autocommit=True)


def ensure_socket_account(layout: Layout, name: str) -> None:
    """``name``@localhost identified by the unix socket, with every privilege, on the primary (replicated): the
    failover watcher runs as the service user and promotes through the nodes' sockets. It grants nothing that
    user does not have already: it owns the data directories."""
    with closing(admin(layout.primary)) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mysql.global_priv WHERE User = %s AND Host = 'localhost'", (name,))
        if cur.fetchone()[0]:
            return
        account = f"{_q(conn, name)}@'localhost'"
        cur.execute(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED VIA unix_socket")
        cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION")


def wait_ready(node: Node, timeout: float = 60.0, alive=lambda: True) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            break
        try:
            with closing(admin(node, timeout=1.0)) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                return
        except pymysql.Error as exc:
            last = exc
        time.sleep(0.2)
    raise StackError(f"{node.name} did not accept connections on {node.socket} ({last}); see its log in .stack/logs/.")


def _q(conn: pymysql.Connection, value: str) -> str:
    return conn.escape(value)


def bootstrap_primary(layout: Layout) -> None:
    """Create the database and the four least-privilege users on the primary.

    Runs before any replica connects, so the replicas receive all of it through replication.
    """
    s: Settings = layout.settings
    db = s["DB_NAME"]
    with closing(admin(layout.primary)) as conn, conn.cursor() as cur:
        # One account for every host of a cluster (address/netmask), else the one HOST.
        client = layout.cluster.client_pattern if layout.cluster.enabled else s["HOST"]

        def user(name_key: str, password_key: str, host: str = client) -> str:
            name, pw = s[name_key], s[password_key]
            cur.execute(f"CREATE USER IF NOT EXISTS {_q(conn, name)}@{_q(conn, host)} IDENTIFIED BY {_q(conn, pw)}")
            cur.execute(f"ALTER USER {_q(conn, name)}@{_q(conn, host)} IDENTIFIED BY {_q(conn, pw)}")
            return f"{_q(conn, name)}@{_q(conn, host)}"

        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        repl = user("DB_REPL_USER", "DB_REPL_PASSWORD")
        cur.execute(f"GRANT REPLICATION SLAVE ON *.* TO {repl}")
        app = user("DB_USER", "DB_PASSWORD")
        cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES ON `{db}`.* TO {app}")
        migrate = user("DB_MIGRATE_USER", "DB_MIGRATE_PASSWORD")
        cur.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES ON `{db}`.* TO {migrate}"
        )
        monitor = user("DB_MONITOR_USER", "DB_MONITOR_PASSWORD")
        cur.execute(f"GRANT SLAVE MONITOR, BINLOG MONITOR ON *.* TO {monitor}")


def configure_replica(layout: Layout, node: Node) -> None:
    """Point a replica at the primary with GTID auto-positioning and start it."""
    s = layout.settings
    host, port = layout.primary.address, layout.primary.port
    with closing(admin(node)) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")
        cur.execute("RESET SLAVE ALL")
        cur.execute("SET GLOBAL gtid_slave_pos = ''")
        cur.execute(
            f"CHANGE MASTER TO MASTER_HOST={_q(conn, host)}, MASTER_PORT={int(port)}, "
            f"MASTER_USER={_q(conn, s['DB_REPL_USER'])}, MASTER_PASSWORD={_q(conn, s['DB_REPL_PASSWORD'])}, "
            "MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos"
        )
        cur.execute("START SLAVE")


def primary_position(layout: Layout) -> str:
    with closing(admin(layout.primary)) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@gtid_binlog_pos")
        return cur.fetchone()[0]


def wait_replicas_caught_up(layout: Layout, timeout: float = 60.0) -> None:
    """Block until every replica has applied the primary's current GTID position."""
    pos = primary_position(layout)
    for node in layout.replicas:
        with closing(admin(node)) as conn, conn.cursor() as cur:
            cur.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (pos, timeout))
            if cur.fetchone()[0] != 0:
                cur.execute("SHOW SLAVE STATUS")
                row = cur.fetchone()
                cols = [d[0] for d in cur.description] if cur.description else []
                status = dict(zip(cols, row, strict=False)) if row else {}
                reason = status.get("Last_IO_Error") or status.get("Last_SQL_Error") or "no error reported"
                raise StackError(
                    f"{node.name} did not catch up with the primary ({reason}); "
                    f"check .stack/logs/{node.name}.log or run `make reset`."
                )
