"""The local SMTP sink (aiosmtpd): every message it receives becomes a file under ``--dir``.

``breakwater mail list`` shows them, so a tester sees what a user would receive. Runs as the
stack's `smtp` program; it relays nothing anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

from aiosmtpd.smtp import SMTP


class Store:
    def __init__(self, directory: Path):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope) -> str:
        name = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.directory / (name + ".tmp")
        header = f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        tmp.write_bytes(header.encode() + envelope.original_content)
        os.replace(tmp, self.directory / name)  # readers never see half a message
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    handler = Store(directory)
    server = await loop.create_server(lambda: SMTP(handler, hostname="breakwater-sink"), host, port)
    pidfile = directory / "sink.pid"
    pidfile.write_text(str(os.getpid()))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        pidfile.unlink(missing_ok=True)


def read_messages(directory: Path) -> list[dict]:
    """Every stored message, oldest first: file, from, to, subject, date, body."""
    from email import message_from_bytes, policy

    out = []
    for path in sorted(directory.glob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        out.append(
            {
                "file": str(path),
                "from": str(msg["From"] or ""),
                "to": str(msg["To"] or ""),
                "subject": str(msg["Subject"] or ""),
                "date": str(msg["Date"] or ""),
                "key": str(msg["X-Breakwater-Key"] or ""),
                "body": body.get_content() if body is not None else "",
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.dir))


if __name__ == "__main__":
    main()
