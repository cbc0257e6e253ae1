"""Start-up cost of `atryum run`: CPU of the app's imports and wall time until `/healthz`.

    .venv/bin/python bench/startup.py [--runs 5] [--dialects sqlite,postgresql]
                                      [--compare OTHER_SRC_DIR]

Each start runs on a database already at head (a replica restarting, a test's server), so the
migration check is measured, not the migrations. `--compare DIR` runs the same starts with
`PYTHONPATH=DIR` (another checkout's `src`, e.g. a `git worktree` of an older commit)
alternating with this one, so both columns share the machine's state of the moment.
Medians of `--runs` starts.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from atryum.db import migrate
from atryum.db.engine import make_engine
from benchkit import free_port, scratch_database

HERE = Path(__file__).resolve().parents[1] / "src"


def _env(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src)}


def import_cpu(src: Path) -> float:
    """CPU seconds of `import atryum.app` in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "import atryum.app"], env=_env(src), check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def time_to_healthy(src: Path, database_url: str, workdir: Path) -> float:
    port = free_port()
    config = workdir / f"atryum-{port}.toml"
    config.write_text(
        f'[server]\nlisten_addr = "127.0.0.1:{port}"\ndatabase_url = "{database_url}"\n'
    )
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "atryum.cli", "run", "--config", str(config)],
        env=_env(src),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - start
            except httpx2.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() - start > 120:
                raise SystemExit(f"atryum run from {src} did not start")
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--compare", type=Path, help="another checkout's src directory")
    args = parser.parse_args()
    trees = {"this": HERE} | ({"compare": args.compare.resolve()} if args.compare else {})
    rows = []
    with tempfile.TemporaryDirectory(prefix="atryum-bench-") as tmp:
        workdir = Path(tmp)
        for dialect in args.dialects.split(","):
            with scratch_database(dialect, workdir) as url:
                engine = make_engine(url)  # at head before the first measured start
                migrate.upgrade(engine)
                engine.dispose()
                walls: dict[str, list[float]] = {name: [] for name in trees}
                cpus: dict[str, list[float]] = {name: [] for name in trees}
                for _ in range(args.runs):
                    for name, src in trees.items():
                        print(f"  {dialect}: {name} …", file=sys.stderr)
                        cpus[name].append(import_cpu(src))
                        walls[name].append(time_to_healthy(src, url, workdir))
                for name in trees:
                    rows.append(
                        (
                            dialect,
                            name,
                            statistics.median(cpus[name]),
                            statistics.median(walls[name]),
                        )
                    )
    print("| dialect | code | import CPU s | start to /healthz s |")
    print("|---|---|---:|---:|")
    for dialect, name, cpu, wall in rows:
        print(f"| {dialect} | {name} | {cpu:.2f} | {wall:.2f} |")


if __name__ == "__main__":
    main()
