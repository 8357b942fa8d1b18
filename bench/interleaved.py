"""Interleaved A/B timing: run sides block by block, alternating which goes first, and compare their rates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from common import CpuMonitor, CpuShare, logger

BlockTimes = list[tuple[int, float, CpuShare]]  # per block: items done, wall seconds, CPU share


def interleave(blocks: Sequence[Any], sides: dict[str, Any]) -> dict[str, BlockTimes]:
    """Run each side (a callable: block -> items done) on each block, rotating which side goes first.

    Both sides of a block run back to back, so load from other processes hits them alike.
    """
    names = list(sides)
    out: dict[str, BlockTimes] = {name: [] for name in names}
    for number, block in enumerate(blocks):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            with CpuMonitor() as cpu:
                done = int(sides[name](block))
            out[name].append((done, cpu.share.wall_s, cpu.share))
        rates = ", ".join(f"{n} {out[n][-1][0] / out[n][-1][1]:,.0f}/s" for n in names)
        logger.info("block %d/%d: %s", number + 1, len(blocks), rates)
    return out


def total_share(times: BlockTimes) -> CpuShare:
    """The CPU shares of all blocks of one side, summed."""
    return CpuShare(
        sum(s.wall_s for _, _, s in times),
        sum(s.own_cpu_s for _, _, s in times),
        sum(s.others_cpu_s for _, _, s in times),
    )


def rate_ratio(test: BlockTimes, base: BlockTimes) -> dict[str, Any]:
    """Rate of `test` over rate of `base`: from the summed times, and per block (median, min, max)."""
    per_block = [(n / s) / (m / r) for (n, s, _), (m, r, _) in zip(test, base, strict=True)]
    test_cpu, base_cpu = total_share(test), total_share(base)
    test_n, base_n = sum(n for n, _, _ in test), sum(n for n, _, _ in base)
    return {
        "blocks": len(per_block),
        "base_items": base_n,
        "test_items": test_n,
        "base_seconds": base_cpu.wall_s,
        "test_seconds": test_cpu.wall_s,
        "base_rate": base_n / base_cpu.wall_s,
        "test_rate": test_n / test_cpu.wall_s,
        "ratio": (test_n / test_cpu.wall_s) / (base_n / base_cpu.wall_s),
        "ratio_cpu": (base_cpu.own_cpu_s / base_n) / (test_cpu.own_cpu_s / test_n),
        "median": float(np.median(per_block)),
        "min": min(per_block),
        "max": max(per_block),
        "per_block": per_block,
        "base_cpu": vars(base_cpu),
        "test_cpu": vars(test_cpu),
    }
