"""A private Debian dovecot (IMAP) on a loopback high port, for the poller's tests and bench.

Users come from a passwd-file, mail is kept in Maildirs under the instance's own directory,
owned by `nobody`; nothing listens outside 127.0.1.x and the system's dovecot is not used.
"""

from __future__ import annotations

import imaplib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.probes.servers import free_port, wait_listening

HOST = "127.0.1.40"
USER, PASSWORD = "bounces", "imap-test-password"


class Dovecot:
    def __init__(self) -> None:
        # Not pytest's tmp_path (0700 parents): dovecot's own users must reach their dirs.
        self.root = Path(tempfile.mkdtemp(prefix="sys-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port(HOST)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"imap://{USER}:{PASSWORD}@{HOST}:{self.port}/INBOX"

    def start(self) -> Dovecot:
        for sub in ("run", "state", "log", "mail"):
            (self.root / sub).mkdir()
        shutil.chown(self.root / "mail", "nobody", "nogroup")
        (self.root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        (self.root / "dovecot.conf").write_text(f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/log/dovecot.log
protocols = imap
listen = {HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={self.root}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""")
        self.process = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_listening(HOST, self.port)
        except Exception as exc:
            raise RuntimeError(f"dovecot did not start: {self.log()}") from exc
        return self

    def log(self) -> str:
        path = self.root / "log" / "dovecot.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(HOST, self.port, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def append(self, messages: list[bytes], mailbox: str = "INBOX") -> None:
        client = self.client()
        try:
            for raw in messages:
                status, _ = client.append(mailbox, None, None, raw)
                assert status == "OK"
        finally:
            client.logout()

    def count(self, mailbox: str) -> int:
        client = self.client()
        try:
            status, data = client.select(f'"{mailbox}"', readonly=True)
            return int(data[0]) if status == "OK" else 0
        finally:
            client.logout()

    def flagged(self, mailbox: str) -> int:
        client = self.client()
        try:
            client.select(f'"{mailbox}"', readonly=True)
            _, data = client.search(None, "FLAGGED")
            return len(data[0].split())
        finally:
            client.logout()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # dovecot's children may outlive the master by a moment.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _children_alive(self.root):
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)


def _children_alive(root: Path) -> bool:
    marker = str(root).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    return True
            except OSError:
                continue
    return False
