"""Measurement harness: cold starts broken down, warm latency, throughput, memory and the bill
per strategy and memory size, on the local emulator (``modelambda bench``; ``benchmarks/``
can drive ``run_bench`` too). See ``harness.py`` for what is measured and how."""

from modelambda.bench.harness import BenchConfig, BenchError, run_bench, write_bench

__all__ = ["BenchConfig", "BenchError", "run_bench", "write_bench"]
