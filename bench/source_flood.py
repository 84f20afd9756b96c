#!/usr/bin/env python3
"""A flood of distinct client sources against a listener with per-source limits: tailgate's memory must not
grow with the number of sources (the table is of fixed size).

Starts the tailgate binary given (default .build/release/tailgate) with a tcp listener that trusts PROXY
headers from 127.0.0.1 and limits each source (max_connections_per_source, connection_rate_per_source),
then opens COUNT connections, each with a PROXY v2 header naming a different IPv4 source, and prints the
agent's RSS before, along the way and after. Only loopback is used.

    bench/source_flood.py [--count 1000000] [--binary PATH]
"""
import argparse, os, socket, struct, subprocess, sys, tempfile, time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def header(source):
    signature = b"\r\n\r\n\x00\r\nQUIT\n"
    addresses = struct.pack("!4s4sHH", socket.inet_aton(source), socket.inet_aton("127.0.0.1"), 40000, 7000)
    return signature + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "tailgate"))
    args = parser.parse_args()
    port, refusing = free_port(), free_port()
    work = tempfile.mkdtemp(prefix="tailgate-flood-")
    config = os.path.join(work, "tailgate.toml")
    with open(config, "w") as file:
        file.write(f"""[log]
level = "warning"
[listeners.flood]
bind = ["127.0.0.1:{port}"]
protocol = "tcp"
default = "nowhere"
proxy_protocol_from = ["127.0.0.1/32"]
max_connections_per_source = 32
connection_rate_per_source = "60/10s"
[upstreams.nowhere]
servers = ["127.0.0.1:{refusing}"]
""")
    agent = subprocess.Popen([args.binary, "run", "--config", config], stderr=open(os.path.join(work, "log"), "w"))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        before = rss_kib(agent.pid)
        print(f"RSS before: {before} KiB", flush=True)
        started = time.monotonic()
        for index in range(args.count):
            source = socket.inet_ntoa(struct.pack("!I", 0x0B000000 + index * 7 % 0x00FFFFFF + 1))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                connection.sendall(header(source))
                connection.settimeout(5)
                try:
                    connection.recv(1)
                except OSError:
                    pass
            if (index + 1) % (args.count // 4) == 0:
                print(f"{index + 1:>9,} sources: RSS {rss_kib(agent.pid)} KiB ({time.monotonic() - started:.0f}s)", flush=True)
        time.sleep(1)
        after = rss_kib(agent.pid)
        print(f"RSS after {args.count:,} distinct sources: {after} KiB (+{after - before} KiB)")
    finally:
        agent.terminate()
        agent.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
