"""Start-up time of `lareid`: `--help` and a usage error, as a ratio to `python -c pass` measured in the same run.

Each command runs in a fresh interpreter the way the console script runs it (`from hf_lareid_cli import main`),
interleaved repeat by repeat so that drift hits all alike; the table shows the median wall time over the repeats and
its ratio to the bare interpreter. `import hf_lareid` (what the entry point avoids) is timed as a reference.
The goal: `lareid --help` and a usage error in under 1 s.

    python benchmarks/bench_cli.py               # 7 repeats
    python benchmarks/bench_cli.py --repeats 15
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from _common import add_results_dir_argument, print_cpu_info, write_results

GOAL_SECONDS = 1.0
ENTRY_POINT = "import sys; from hf_lareid_cli import main; sys.exit(main({argv!r}))"
COMMANDS = {
    "python -c pass (baseline)": ["-c", "pass"],
    "lareid --help": ["-c", ENTRY_POINT.format(argv=["--help"])],
    "lareid no-such-command (usage error)": ["-c", ENTRY_POINT.format(argv=["no-such-command"])],
    "import hf_lareid (reference)": ["-c", "import hf_lareid"],
}
GOAL_ROWS = ("lareid --help", "lareid no-such-command (usage error)")


def time_once(arguments: list[str]) -> float:
    """Wall seconds of one fresh `python ARGUMENTS`."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    add_results_dir_argument(parser)
    args = parser.parse_args()
    print_cpu_info()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for name in COMMANDS:  # warm the file cache once
        time_once(COMMANDS[name])
    for repeat in range(args.repeats):
        order = list(COMMANDS) if repeat % 2 == 0 else list(reversed(COMMANDS))
        for name in order:
            times[name].append(time_once(COMMANDS[name]))
    baseline = statistics.median(times["python -c pass (baseline)"])
    print(f"\nmedian wall time over {args.repeats} repeats (fresh interpreter each)\n")
    print("| command | median s | min s | max s | ratio to python -c pass |")
    print("|---|---|---|---|---|")
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {min(values):.3f} | {max(values):.3f} | {median / baseline:.1f}x |")
        rows.append(
            {
                "repeats": args.repeats,
                "command_timed": name,
                "baseline": name == "python -c pass (baseline)",
                "median_s": median,
                "min_s": min(values),
                "max_s": max(values),
                "vs_baseline": median / baseline,
                "goal_s": GOAL_SECONDS if name in GOAL_ROWS else None,
            }
        )
    verdicts = [f"{name}: {'met' if statistics.median(times[name]) < GOAL_SECONDS else 'MISSED'}" for name in GOAL_ROWS]
    print(f"\ngoal under {GOAL_SECONDS:.0f} s: " + "; ".join(verdicts))
    write_results("cli_startup", rows, args.results_dir)


if __name__ == "__main__":
    main()
