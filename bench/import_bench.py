"""Import benchmark: a generated 1,000,000-line feed through the whole `import_feed` command,
against a raw `COPY` of the same addresses into a bare `inet` table.

    .venv/bin/python bench/import_bench.py [--lines N]
    (DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/sys_bench, recreated)

Prints rows/s for both, the ratio, and the command's peak memory (RSS).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parent.parent


def generate(path: Path, count: int) -> None:
    rng = random.Random(1)
    with path.open("w") as out:
        out.write("# generated benchmark feed\n")
        for _ in range(count - 1):
            a = rng.choice([5, 23, 41, 62, 82, 91, 109, 151, 185, 212])
            out.write(f"{a}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}\n")


def raw_copy_seconds(dsn: str, path: Path) -> float:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_raw_copy")
        cur.execute("CREATE TABLE bench_raw_copy (ip inet)")
        conn.commit()
        with path.open() as feed:
            next(feed)
            start = time.perf_counter()
            cur.copy_expert("COPY bench_raw_copy (ip) FROM STDIN", feed)
            conn.commit()
            elapsed = time.perf_counter() - start
        cur.execute("DROP TABLE bench_raw_copy")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    url = os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sys_bench")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnop")
    os.environ.setdefault("DEBUG", "1")
    dbname = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {dbname}")
        cur.execute(f"CREATE DATABASE {dbname}")
    conn.close()
    python = sys.executable
    env = dict(os.environ)
    run = lambda *a: subprocess.run([python, "manage.py", *a], cwd=REPO, env=env, check=True,  # noqa: E731
                                    capture_output=True, text=True)
    run("migrate", "-v0")
    run("create_campaign", "bench", "--agency", "Bench Agency", "--kinds", "relay")
    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "feed.txt"
        generate(feed, args.lines)
        copy_s = raw_copy_seconds(url, feed)
        start = time.perf_counter()
        proc = subprocess.run(
            [python, "manage.py", "import_feed", "--campaign", "bench", str(feed)],
            cwd=REPO, env=env, capture_output=True, text=True, check=True,
        )
        import_s = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        start = time.perf_counter()
        again = subprocess.run(
            [python, "manage.py", "import_feed", "--campaign", "bench", str(feed)],
            cwd=REPO, env=env, capture_output=True, text=True, check=True,
        )
        reimport_s = time.perf_counter() - start
    print(f"lines={args.lines}")
    print(f"import_feed: {import_s:.2f} s  {args.lines / import_s:,.0f} rows/s  "
          f"({proc.stdout.strip().splitlines()[-1]})")
    print(f"re-import:   {reimport_s:.2f} s  {args.lines / reimport_s:,.0f} rows/s  "
          f"({again.stdout.strip().splitlines()[-1]})")
    print(f"raw COPY:    {copy_s:.2f} s  {args.lines / copy_s:,.0f} rows/s")
    print(f"ratio import/COPY: {import_s / copy_s:.1f}x   "
          f"peak RSS of import_feed: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
