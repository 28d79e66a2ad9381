"""Probe benchmark: many fake servers on loopback, one run over N targets.

    .venv/bin/python bench/probes_bench.py [--targets 10000] [--timeout 5] [--chunk 2000]

A child process binds one listener per target on its own 127.A.B.1 address (every target in
its own /24, as on the Internet): 35% open SMTP relays, 30% closed relays, 15% open HTTP
proxies (through a canary in the same child), 15% HTTP proxies that deny, 5% that accept
and never say a word. This process probes them exactly as a run does, chunk by chunk through
`engine.probe_plans` (the database writes of a run are not part of this figure), and prints
probes/s, wall time, the slowest chunk and peak RSS. Only loopback is ever touched.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMTP_PORT = 2525
PROXY_PORT = 3128
CANARY = ("127.99.0.1", 8099)


def target(i: int) -> tuple[str, str, int, str]:
    """(ip, check, port, behaviour) of target i."""
    ip = f"127.{100 + i // 250}.{i % 250}.1"
    slot = i % 20
    if slot == 0:
        return ip, "smtp_relay", SMTP_PORT, "silent"
    if slot < 8:
        return ip, "smtp_relay", SMTP_PORT, "open_relay"
    if slot < 14:
        return ip, "smtp_relay", SMTP_PORT, "closed_relay"
    if slot < 17:
        return ip, "http_proxy", PROXY_PORT, "open_proxy"
    return ip, "http_proxy", PROXY_PORT, "denying_proxy"


# --- the fake servers (child process) -------------------------------------------------------

async def smtp(reader, writer, accept: bool) -> None:
    writer.write(b"220 bench ESMTP\r\n")
    while line := await reader.readline():
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-bench\r\n250 PIPELINING\r\n")
        elif verb == b"RCPT":
            writer.write(b"250 2.1.5 Ok\r\n" if accept else b"554 5.7.1 Relay access denied\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 Bye\r\n")
            break
        else:
            writer.write(b"250 Ok\r\n")
    await writer.drain()


async def http_proxy(reader, writer, accept: bool) -> None:
    request = await reader.readline()
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass
    if not accept:
        writer.write(b"HTTP/1.1 403 Access denied\r\nContent-Length: 0\r\n\r\n")
        return
    method, url, _ = request.decode().split()
    up_reader, up_writer = await asyncio.open_connection(*CANARY)
    if method == "CONNECT":
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        up_writer.write(await reader.readuntil(b"\r\n\r\n"))
    else:
        path = "/" + url.split("/", 3)[3]
        up_writer.write(f"GET {path} HTTP/1.0\r\nHost: canary\r\n\r\n".encode())
    writer.write(await up_reader.read(65536))
    up_writer.close()


async def serve(count: int, key: bytes) -> None:
    import resource as res

    from probes.verification.canary import CanaryServer

    soft, hard = res.getrlimit(res.RLIMIT_NOFILE)
    res.setrlimit(res.RLIMIT_NOFILE, (hard, hard))
    await CanaryServer(key, *CANARY).start()
    silent: list[asyncio.StreamWriter] = []

    def handler(behaviour: str):
        async def handle(reader, writer):
            try:
                if behaviour == "silent":
                    silent.append(writer)  # accept, keep open, never answer
                    return
                if behaviour.endswith("relay"):
                    await smtp(reader, writer, behaviour == "open_relay")
                else:
                    await http_proxy(reader, writer, behaviour == "open_proxy")
                await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError, ValueError):
                pass
            if behaviour != "silent":
                writer.close()
        return handle

    for i in range(count):
        ip, _check, port, behaviour = target(i)
        await asyncio.start_server(handler(behaviour), ip, port, backlog=64)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# --- the prober (this process) ----------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--key", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campaign.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ["PROBE_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    import django

    django.setup()

    if args.serve:
        asyncio.run(serve(args.targets, bytes.fromhex(args.key)))
        return

    from probes.verification import engine, services
    from probes.verification.base import ProbeConfig

    key = services.canary_key()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--targets", str(args.targets), "--key", key.hex()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        started = time.monotonic()
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        print(f"servers: {args.targets} listeners up in {time.monotonic() - started:.1f}s")
        config = ProbeConfig(timeout=args.timeout, canary_domain="canary.test",
                             canary_host=CANARY[0], canary_port=CANARY[1], canary_key=key)
        plans = []
        expected = {}
        for i in range(args.targets):
            ip, check, port, behaviour = target(i)
            plans.append(engine.HostPlan(i, ip, [(check, port)]))
            expected[i] = behaviour
        verdicts: Counter = Counter()
        wrong: Counter = Counter()
        right = {"open_relay": "open", "closed_relay": "not_open", "open_proxy": "open",
                 "denying_proxy": "not_open", "silent": "unreachable"}

        def on_host(outcome):
            verdict = outcome.outcomes[0].verdict
            verdicts[verdict] += 1
            if verdict != right[expected[outcome.host_id]]:
                wrong[(expected[outcome.host_id], verdict)] += 1

        chunk_times = []
        peak = 0
        t0 = time.monotonic()
        for start in range(0, len(plans), args.chunk):
            c0 = time.monotonic()
            runner = engine.probe_plans(plans[start:start + args.chunk], config, on_host=on_host,
                                        concurrency=args.concurrency)
            peak = max(peak, runner.peak_in_flight)
            chunk_times.append(time.monotonic() - c0)
        wall = time.monotonic() - t0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"probes={args.targets} wall={wall:.1f}s probes/s={args.targets / wall:.0f} "
              f"chunks={len(chunk_times)}x{args.chunk} slowest_chunk={max(chunk_times):.1f}s "
              f"peak_in_flight={peak} peak_rss={rss_mb:.0f}MB timeout={args.timeout:g}s")
        print("verdicts:", dict(verdicts))
        print("misjudged:", dict(wrong) or "none")
        if wrong:
            sys.exit(1)
    finally:
        if child.stdin:
            child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    main()
