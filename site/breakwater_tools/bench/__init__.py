"""Benchmark-only routes (BREAKWATER_BENCH_ROUTES=1): the same bytes as a cached endpoint, from memory.

`make bench` compares a cached endpoint with these bare routes under the same gunicorn settings,
so the difference is exactly what the cache costs. Never enabled by default.
"""
