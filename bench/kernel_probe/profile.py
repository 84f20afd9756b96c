#!/usr/bin/env python3
"""Where a keep-alive request's CPU goes on the kernel path (bench/kernel_probe in kernel mode) beside
tailgate's splice path: the benchmark's backend and wrk (50 connections, 10 s) under a system-wide
`perf record`, then the machine's busiest symbols for each. Needs root, perf, and the probe built
(bench/kernel_probe/build).

usage: profile.py [TAILGATE_BINARY]"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bench  # noqa: E402  (the benchmark's backend, certificates and client)

ROOT = bench.ROOT
PROBE = os.path.join(ROOT, ".build/kernel_probe/probe")
OBJECT = os.path.join(ROOT, ".build/kernel_probe/relay.bpf.o")
if len(sys.argv) > 1:
    bench.BINARY = sys.argv[1]
bench.PROBE, bench.PROBE_OBJECT = PROBE, OBJECT

procs = bench.Processes()
workdir = tempfile.mkdtemp(prefix="tailgate-profile-")
try:
    certs = bench.make_certificates(workdir)
    hosts = bench.write_hosts_file(workdir)
    backend = bench.start_backends(procs, workdir, certs, 65536)
    for kind in ("tailgate", "probe-kernel"):
        row = bench.start_proxy(procs, kind, workdir, backend["ports"], 65536)
        data = os.path.join(workdir, f"{kind}.perf")
        perf = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "999", "-o", data, "--", "sleep", "12"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ctx = {"hosts": hosts, "duration": 10}
        result = bench.wrk(ctx, row, 50, ["--latency"])
        perf.wait()
        print(f"## {kind}: {result['rps']:,.0f} req/s, p99 {result['latency_ms'].get('99')} ms\n")
        for sort, limit in (("comm", "0.5"), ("sym", "0.9")):
            report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", sort, "--stdio",
                                     "--percent-limit", limit, "-g", "none"], capture_output=True, text=True).stdout
            print(f"by {sort}:")
            print("\n".join(line for line in report.splitlines() if line.strip() and not line.startswith("#")))
        print()
        procs.stop(row["proc"])
finally:
    procs.stop_all()
