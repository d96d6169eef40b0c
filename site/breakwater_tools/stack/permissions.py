"""Who owns what in the state folder once it is rendered: the service user's folders 0700, secrets and the
services' configurations 0600, root's folders the service user only passes through."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.supervised import program_folders, programs
from breakwater_tools.stack.users import ROOT_STARTED, hand_over, hand_over_tree, set_owner


def secure_state(layout: Layout) -> None:
    """Owners and modes of the state (after :func:`breakwater_tools.stack.render.render_all`): root's folders the
    service user only passes (the state folder, logs, Nginx's and the edge's), the service user's own folders
    (0700), secrets and the services' configurations 0600."""
    run = layout.run_as
    s = layout.settings
    uid = gid = -1
    if run.switch:
        pw = pwd.getpwnam(run.name)
        uid, gid = pw.pw_uid, pw.pw_gid

    def shared(folder: Path, mode: int = 0o750) -> None:
        """root's, the service user passes through (its group)."""
        folder.mkdir(parents=True, exist_ok=True)
        if run.switch:
            os.chown(folder, 0, gid, follow_symlinks=False)
        folder.chmod(mode)

    def own(folder: Path) -> None:
        """the service user's, nobody else's."""
        folder.mkdir(parents=True, exist_ok=True)
        if run.switch and folder.lstat().st_uid != uid:
            set_owner(folder, uid, gid)
            hand_over_tree(folder, uid, gid)
        folder.chmod(0o700)

    for folder in (layout.state, layout.logs, layout.state / "run", layout.nginx, layout.edge):
        shared(folder)
    layout.supervisor.mkdir(parents=True, exist_ok=True)  # supervisord's configuration and socket: root's alone
    if run.switch:
        os.chown(layout.supervisor, 0, 0, follow_symlinks=False)
    layout.supervisor.chmod(0o700)
    folders = program_folders(layout)
    served = [layout.mariadb, layout.celery, layout.prometheus, layout.mail, s.media_dir, Path(s["STATIC_DIR"])]
    started = [Path(p.directory) for p in programs(layout) if p.name not in ROOT_STARTED]
    for folder in [*served, *started]:
        own(folder.absolute())
    for n in layout.nodes:
        for folder in (n.dir, n.datadir, n.dir / "tmp"):
            own(folder)
        hand_over(n.cnf, run)
        error_log = layout.logs / f"{n.name}-error.log"  # MariaDB writes it itself, in root's logs folder
        error_log.touch(exist_ok=True)
        hand_over(error_log, run, 0o640)
    for name in ("redis", "redis-cache", "redis-replica", *(n for n, _p, _d, _h in layout.sentinels())):
        for conf in ("redis.conf", "sentinel.conf"):
            path = folders[name] / conf
            if path.exists():
                hand_over(path, run)  # passwords; a Sentinel (and a failover's CONFIG REWRITE) rewrites it
    for conf in ("rabbitmq.conf", "enabled_plugins", "rabbitmq-env.conf"):
        hand_over(layout.rabbitmq / conf, run)
    hand_over(layout.state / "secrets.env", run)  # every Python service reads it
    for path in (layout.nginx / "nginx.conf", layout.edge_vcl):  # read by the root-started masters
        if not path.exists() or path.is_symlink():
            continue
        if run.switch:
            os.chown(path, 0, gid, follow_symlinks=False)
        path.chmod(0o640)
    for log in layout.logs.glob("*.log*"):  # written by earlier runs, before the umask was set
        if not log.is_symlink() and log.stat().st_mode & 0o007:
            log.chmod(log.stat().st_mode & ~0o007)
