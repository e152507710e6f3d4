"""Every scenario in one run, printed as the tables that go into benchmarks/README.md.

python -m benchmarks.run_all [--smoke]   (--smoke: a few dozen requests each, as the test suite does)
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from benchmarks import flash_sale, mixed_load, provider_hang, reminder_fanout, webhook_burst
from benchmarks.harness import machine

FULL = [
    (flash_sale, {"db": "postgresql"}),
    (flash_sale, {"db": "sqlite"}),
    (webhook_burst, {"db": "postgresql"}),
    (mixed_load, {"db": "postgresql"}),
    (provider_hang, {"db": "postgresql"}),
    (reminder_fanout, {"db": "postgresql"}),
]
SMOKE = {
    flash_sale: {"buyers": 30, "seats": 10, "concurrency": 8, "provider_latency_ms": 50, "workers": 2},
    webhook_burst: {"events": 30, "concurrency": 8, "workers": 2},
    mixed_load: {"pages": 20, "buyers": 30, "seats": 10, "provider_latency_ms": 50, "workers": 2},
    provider_hang: {
        "seats": 10,
        "rate": 2,
        "hang_at": 1,
        "hang_seconds": 3,
        "after": 1,
        "read_timeout": 1,
        "workers": 2,
    },
    reminder_fanout: {"messages": 30, "workers": 2, "lead_seconds": 5},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    print(f"# Benchmarks — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {machine()}\n")
    failed = 0
    for module, options in FULL:
        report = module.run(**options, **(SMOKE[module] if args.smoke else {}))
        print(module.render(report), end="\n\n", flush=True)
        failed += not report.get("ok", True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
