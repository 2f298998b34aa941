"""Labels benchmarks: what the decision engine and the KAS pay per request.

Baseline: ``level_rank`` warm (an ``lru_cache`` hit). Compared with ``map_level`` warm
and with their uncached bodies (what a call would cost without the caches), with
banner parsing and rendering, and with the SPIF operations on one label (validate,
marking, ACDF, translate) and SPIF loading (lenient vs schema-validated).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from relto.labels import (
    Clearance,
    LabelCategory,
    access_check,
    banner_to_label,
    builtin_policy,
    level_rank,
    load_spif,
    map_level,
    marking,
    national,
    parse_banner,
    translate,
    validate_label,
)

DATA = Path(__file__).resolve().parents[1] / "src" / "relto" / "labels" / "data"


def per_call(fn: Callable[[], object], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    usa, jpn = builtin_policy("USA"), builtin_policy("JPN")
    banner = parse_banner("SECRET//ORCON/REL TO USA, AUS, GBR, JPN", "USA")
    label = banner_to_label(banner, usa)
    clearance = Clearance(
        "USA",
        ("SECRET",),
        (LabelCategory("Releasable To", "PERMISSIVE", ("GBR",)),),
        usa.policy_id,
    )
    uncached_index = national._equivalence_index.__wrapped__
    rows: list[tuple[str, float]] = [
        ("level_rank (cached) [baseline]", per_call(lambda: level_rank("GBR", "SECRET"), 200_000)),
        ("map_level (cached)", per_call(lambda: map_level("USA", "SECRET", "JPN"), 200_000)),
        (
            "level_rank uncached body",
            per_call(lambda: level_rank.__wrapped__("GBR", "SECRET"), 20_000),
        ),
        (
            "map_level uncached body",
            per_call(lambda: map_level.__wrapped__("USA", "SECRET", "JPN"), 20_000),
        ),
        ("map_level, equivalence index rebuilt", per_call(uncached_index, 2_000)),
        (
            "parse_banner",
            per_call(lambda: parse_banner("s//rel to gbr, usa, aus//oc", "USA"), 5_000),
        ),
        ("Banner.render", per_call(banner.render, 50_000)),
        ("validate_label", per_call(lambda: validate_label(label, usa), 5_000)),
        ("marking", per_call(lambda: marking(label, usa), 5_000)),
        ("access_check", per_call(lambda: access_check(clearance, label, usa), 5_000)),
        ("translate USA -> JPN", per_call(lambda: translate(label, usa, jpn.policy_id), 2_000)),
        (
            "load_spif usa.xml lenient",
            per_call(lambda: load_spif(DATA / "usa.xml", strict=False), 20),
        ),
        ("load_spif usa.xml strict (XSD)", per_call(lambda: load_spif(DATA / "usa.xml"), 20)),
    ]
    base = rows[0][1]
    print(f"{'operation':44} {'µs/call':>10} {'× baseline':>11}")
    for name, secs in rows:
        print(f"{name:44} {secs * 1e6:10.2f} {secs / base:11.1f}")


if __name__ == "__main__":
    main()
