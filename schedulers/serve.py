"""`python -m schedulers.serve`: gunicorn and the scheduler process side by side (`make run`).

Both start together and stop together: when either exits, or this process gets
SIGINT/SIGTERM, the other is sent SIGTERM (then SIGKILL after a grace period).
The scheduler is a process of its own, never a thread in a web worker.
In production, run `gunicorn wsgi:app` (from the project root, or with `-c gunicorn.conf.py`:
its request line and header limits let the app answer over-long requests as problem+json) and
`python -m schedulers` under your process manager instead; more than one scheduler is safe
(they share a lease).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_SECONDS = 20
CONFIG = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1:8000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--access-log", action="store_true", help="gunicorn access log on stdout")
    args = parser.parse_args(argv)
    web = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(CONFIG),
        "--workers",
        str(args.workers),
        "--bind",
        args.bind,
        "wsgi:app",
    ]
    if args.access_log:
        web[3:3] = ["--access-logfile", "-"]
    children = [subprocess.Popen(web), subprocess.Popen([sys.executable, "-m", "schedulers"])]

    stopping = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: stopping.append(number))
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    code = next((child.returncode for child in children if child.returncode is not None), 0)
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return code


if __name__ == "__main__":
    sys.exit(main())
