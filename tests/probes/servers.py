"""Private instances of Debian's postfix, tinyproxy and dante-server on loopback high ports.

Each gets its own config, spool and log under a temporary directory, listens on a 127.0.1.x
address, and is stopped at the end. Postfix cannot deliver anything even by mistake: every
transport is `discard` and DNS is off. See ../../../shared/notes/real-servers-on-loopback.md.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_listening(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def process_gone(pid: int) -> bool:
    """True once `pid` exited; a zombie counts as gone (PID 1 here does not reap daemons)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(0.1)
    return False


@dataclass
class Listener:
    host: str
    port: int


@dataclass
class Postfix:
    """One postfix instance with an open-relay and a closed smtpd listener."""

    root: Path
    open: Listener = field(init=False)
    closed: Listener = field(init=False)
    master_pid: int = 0

    @property
    def conf(self) -> Path:
        return self.root / "etc"

    @property
    def queue(self) -> Path:
        return self.root / "queue"

    @property
    def log(self) -> Path:
        return self.root / "log" / "postfix.log"

    def write_config(self) -> None:
        self.open = Listener("127.0.1.2", free_port("127.0.1.2"))
        self.closed = Listener("127.0.1.3", free_port("127.0.1.3"))
        for sub in ("etc", "queue", "data", "log", "tls"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self.root / "data", postfix_user.pw_uid, postfix_user.pw_gid)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=closed.sys-test.invalid", "-keyout", str(self.root / "tls/key.pem"),
             "-out", str(self.root / "tls/cert.pem")],
            check=True, capture_output=True,
        )
        (self.conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {self.root / "data"}
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mx.sys-test.invalid
mydomain = sys-test.invalid
myorigin = $myhostname
mydestination = $myhostname
mynetworks = 127.255.255.254/32
relayhost =
# Nothing may ever leave: every transport discards, no DNS.
default_transport = discard
relay_transport = discard
local_transport = discard
virtual_transport = discard
smtp_dns_support_level = disabled
alias_maps =
alias_database =
# Empty on purpose: no recipient validation, the classic source of false "open" verdicts.
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = $myhostname ESMTP
smtpd_tls_security_level = may
smtpd_tls_cert_file = {self.root / "tls/cert.pem"}
smtpd_tls_key_file = {self.root / "tls/key.pem"}
maillog_file = {self.log}
maillog_file_prefixes = {self.root}
biff = no
""")
        smtpd = "inet n - n - - smtpd -o smtpd_tls_security_level=may"
        (self.conf / "master.cf").write_text(f"""\
{self.open.host}:{self.open.port} {smtpd} -o syslog_name=postfix-open -o mynetworks=127.0.0.0/8
{self.closed.host}:{self.closed.port} {smtpd} -o syslog_name=postfix-closed
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""")

    def start(self) -> None:
        self.write_config()
        env = {**os.environ, "MAIL_CONFIG": str(self.conf)}
        subprocess.run(["postfix", "-c", str(self.conf), "check"], check=True, env=env,
                       capture_output=True)
        done = subprocess.run(["postfix", "-c", str(self.conf), "start"], env=env,
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"postfix start failed: {done.stderr}{self.read_log()}")
        wait_listening(self.open.host, self.open.port)
        wait_listening(self.closed.host, self.closed.port)
        pid_file = self.queue / "pid" / "master.pid"
        self.master_pid = int(pid_file.read_text().split()[0])
        # A broken main.cf can silently fall back to the system instance: make sure it's ours.
        cmdline = Path(f"/proc/{self.master_pid}/cmdline").read_bytes()
        assert b"master" in cmdline

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True)
        if self.master_pid and not wait_gone(self.master_pid):
            os.kill(self.master_pid, 9)

    def read_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def queued_files(self, settle: float = 5.0) -> list[Path]:
        """Files left in the queue once postfix has settled.

        smtpd opens an `incoming` file at the first accepted RCPT and cleanup removes it
        shortly *after* the client hung up without DATA, so poll briefly before judging.
        """
        deadline = time.monotonic() + settle
        while True:
            found = self._queue_files()
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def _queue_files(self) -> list[Path]:
        found = []
        for sub in ("maildrop", "incoming", "active", "deferred", "hold", "corrupt"):
            directory = self.queue / sub
            if directory.exists():
                found += [p for p in directory.rglob("*") if p.is_file()]
        return found


@dataclass
class Tinyproxy:
    root: Path
    name: str
    listen: Listener
    allow: str
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o777)  # tinyproxy drops to nobody before writing its log
        conf = self.root / f"{self.name}.conf"
        conf.write_text(f"""\
User nobody
Group nogroup
Port {self.listen.port}
Listen {self.listen.host}
Timeout 20
LogFile "{self.root / (self.name + '.log')}"
LogLevel Info
MaxClients 50
Allow {self.allow}
DisableViaHeader Yes
""")
        self.process = subprocess.Popen(["tinyproxy", "-d", "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_listening(self.listen.host, self.listen.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@dataclass
class Dante:
    root: Path
    name: str
    listen: Listener
    open: bool
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / f"{self.name}.conf"
        rules = (
            # Open, but only towards loopback: the test canary, never the Internet.
            "socks pass {\n  from: 127.0.0.0/8 to: 127.0.0.0/8\n  command: connect\n"
            "  log: error connect\n}\n"
            if self.open else ""
        ) + "socks block {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n  log: error connect\n}\n"
        conf.write_text(f"""\
logoutput: {self.root / (self.name + '.log')}
internal: {self.listen.host} port = {self.listen.port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
  from: 127.0.0.0/8 to: 0.0.0.0/0
}}
{rules}""")
        self.process = subprocess.Popen(
            ["danted", "-f", str(conf), "-p", str(self.root / f"{self.name}.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_listening(self.listen.host, self.listen.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def have_binaries() -> list[str]:
    return [name for name in ("postfix", "tinyproxy", "danted", "openssl")
            if shutil.which(name) is None]
