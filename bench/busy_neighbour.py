"""A bursty neighbour on the same cores, as on a shared machine: spins for 0.1-0.6 s, sleeps 0.3-1.5 s, until
killed (seeded, so two runs beside it see the same pattern of bursts).

    python bench/busy_neighbour.py & python bench/load.py at80 --seconds 180; kill %1
"""

from __future__ import annotations

import random
import time


def main() -> None:
    rng = random.Random(11)
    while True:
        spin_until = time.perf_counter() + rng.uniform(0.1, 0.6)
        while time.perf_counter() < spin_until:
            pass
        time.sleep(rng.uniform(0.3, 1.5))


if __name__ == "__main__":
    main()
