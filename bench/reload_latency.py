#!/usr/bin/env python3
"""Reload latency: SIGHUP to READY=1 on NOTIFY_SOCKET, startup to READY=1, and `tailgate check` time,
for configs with 1, 100 and 1,000 routes. Uses the release binary (make release) unless TAILGATE_BINARY is set.

Prints a Markdown table; medians over the repetitions."""
import os, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("TAILGATE_BINARY", os.path.join(ROOT, ".build/release/tailgate"))
REPEAT = int(os.environ.get("REPEAT", "20"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(routes, port):
    lines = ["[listeners.public]", f'bind = ["127.0.0.1:{port}"]', 'default = "a"', "[listeners.public.routes]"]
    lines += [f'"host{i}.example.com" = "{"a" if i % 2 else "b"}"' for i in range(routes)]
    lines += ["[upstreams.a]", 'servers = ["127.0.0.1:9001"]', "[upstreams.b]", 'servers = ["127.0.0.1:9002"]']
    return "\n".join(lines) + "\n"


def wait_for(sock, prefix, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            data = sock.recv(4096).decode()
        except socket.timeout:
            continue
        if any(line == prefix for line in data.split("\n")):
            return time.monotonic()
    raise RuntimeError(f"no {prefix}")


def measure(routes, workdir):
    path = os.path.join(workdir, f"r{routes}.toml")
    with open(path, "w") as f:
        f.write(config(routes, free_port()))
    checks = []
    for _ in range(5):
        t = time.monotonic()
        subprocess.run([BINARY, "check", "--config", path], check=True, capture_output=True)
        checks.append(time.monotonic() - t)
    notify = os.path.join(workdir, f"notify-{routes}.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify)
    sock.settimeout(0.05)
    env = dict(os.environ, NOTIFY_SOCKET=notify)
    started = time.monotonic()
    proc = subprocess.Popen([BINARY, "run", "--config", path], env=env, stderr=subprocess.DEVNULL)
    try:
        startup = wait_for(sock, "READY=1") - started
        reloads = []
        for _ in range(REPEAT):
            t = time.monotonic()
            proc.send_signal(signal.SIGHUP)
            reloads.append(wait_for(sock, "READY=1") - t)
    finally:
        # Never leave the agent behind, also when a READY=1 did not come.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    sock.close()
    os.unlink(notify)
    return statistics.median(checks), startup, statistics.median(reloads), max(reloads)


def main():
    if not os.access(BINARY, os.X_OK):
        sys.exit(f"{BINARY} not found: run `make release` first")
    with tempfile.TemporaryDirectory() as workdir:
        print("| routes | check (load+validate) | startup to READY | reload SIGHUP→READY (median) | reload (max) |")
        print("|---:|---:|---:|---:|---:|")
        for routes in (1, 100, 1000):
            check, startup, reload, worst = measure(routes, workdir)
            print(f"| {routes} | {check*1000:.1f} ms | {startup*1000:.1f} ms | {reload*1000:.2f} ms | {worst*1000:.2f} ms |")


if __name__ == "__main__":
    main()
