#!/usr/bin/env python3
"""Peer benchmark for `nova-bench schema`: jsonschema-rs (Rust, via its Python binding)
validating the same schema and document as nova-host's Swift validator. `nova-bench schema`
runs it once per shape (envelope, deep, array; see make_shapes.py) with --schema/--instance.

Setup (once):   pip install jsonschema-rs        # or: pip install -r Benchmarks/schema/requirements.txt
Run directly:   python3 Benchmarks/schema/peer_jsonschema_rs.py [--iterations N] [--rounds R]
                         [--schema FILE] [--instance FILE]

Only validation is timed: the schema is compiled and the document parsed (json.load) before
the clock starts. Each round calls `validator.is_valid(doc)` N times; the figure is the median
of R rounds, in microseconds per validation. The per-call cost of the Python loop and of
handing the Python dict to the Rust extension is included (it is what a Python caller pays);
the loop overhead alone is printed too, so it can be subtracted.

Last lines, for the Swift driver:  PEER_US_PER_VALIDATION=<float> (wall clock) and
PEER_CPU_US_PER_VALIDATION=<float> (this thread's CPU time, steadier on a loaded machine).
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schema", default=os.path.join(HERE, "envelope.schema.json"))
    ap.add_argument("--instance", default=os.path.join(HERE, "envelope.json"))
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    try:
        import jsonschema_rs
    except ImportError:
        print("jsonschema-rs is not installed: pip install jsonschema-rs", file=sys.stderr)
        return 3

    with open(args.schema) as f:
        schema = json.load(f)
    with open(args.instance) as f:
        doc = json.load(f)

    validator = jsonschema_rs.validator_for(schema)
    if not validator.is_valid(doc):
        print("the benchmark document is not valid against the schema", file=sys.stderr)
        return 4

    n = args.iterations
    is_valid = validator.is_valid
    for _ in range(min(n, 2000)):  # warm-up
        is_valid(doc)

    samples = []
    cpu_samples = []
    for _ in range(args.rounds):
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        for _ in range(n):
            is_valid(doc)
        samples.append((time.perf_counter_ns() - t0) / n / 1000.0)
        cpu_samples.append((time.thread_time_ns() - c0) / n / 1000.0)
    us = statistics.median(samples)
    cpu_us = statistics.median(cpu_samples)

    # Loop + call overhead of a trivial C function, for reference.
    noop = len
    base = []
    for _ in range(args.rounds):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            noop(doc)
        base.append((time.perf_counter_ns() - t0) / n / 1000.0)
    overhead = statistics.median(base)

    try:
        from importlib.metadata import version
        ver = version("jsonschema-rs")
    except Exception:  # pragma: no cover
        ver = "?"
    print(f"jsonschema-rs {ver} (Python {sys.version.split()[0]}): {us:.3f} us wall, {cpu_us:.3f} us cpu /validation "
          f"(is_valid, median of {args.rounds} rounds x {n}); Python loop+call overhead {overhead:.3f} us")
    print(f"PEER_US_PER_VALIDATION={us:.4f}")
    print(f"PEER_CPU_US_PER_VALIDATION={cpu_us:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
