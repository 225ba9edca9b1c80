"""How long the `twin` command takes from start to exit, per command.

    python benchmarks/cli_latency.py HOME [--runs 5] [--question "..."]

HOME is a twin home with memory (and, for `ask`, a trained model). Each command runs as a
fresh process, as a person would run it, `--runs` times; the figures are the median and the
slowest run in seconds, and the median CPU time (user + system) of the process: on a machine
that other work shares, start-to-exit time grows with the load, CPU time much less (the load
average is printed with the figures). Targets on two cores: `--help` under 0.5 s, `search`
under 3 s. Ends by printing one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds from start to exit and CPU seconds of the process; a failing command is an
    error naming it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-500:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("home", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--question", default="When did I run the half marathon?")
    args = parser.parse_args()
    twin = shutil.which("twin") or str(Path(sys.executable).parent / "twin")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    home = ["--home", str(args.home)]
    commands = {
        "help": [twin, "--help"],
        "memory stats": [twin, *home, "memory", "stats"],
        "search": [twin, *home, "search", args.question],
        "ask": [twin, *home, "ask", args.question],
    }
    figures: dict[str, dict[str, float]] = {}
    for name, command in commands.items():
        runs = [timed(command, env) for _ in range(args.runs)]
        times = [seconds for seconds, _ in runs]
        figures[name] = {
            "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
            "cpu_s": round(statistics.median(cpu for _, cpu in runs), 3),
        }
        shown = figures[name]
        print(
            f"{name:14} median {shown['median_s']:.2f} s, max {shown['max_s']:.2f} s, "
            f"CPU {shown['cpu_s']:.2f} s"
        )
    load = round(os.getloadavg()[0], 2)
    print(f"load average {load} on {os.cpu_count()} cores")
    print(
        json.dumps(
            {
                "benchmark": "cli_latency",
                "runs": args.runs,
                "load": load,
                "cores": os.cpu_count(),
                "commands": figures,
            }
        )
    )


if __name__ == "__main__":
    main()
