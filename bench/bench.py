#!/usr/bin/env python3
"""Side-by-side benchmark of TLS-passthrough SNI proxies sending PROXY protocol headers:
tailgate, HAProxy and nginx stream, with a direct client → backend row as the physical reference.

Everything runs on loopback (127.0.0.0/8) in one run: an nginx instance with two TLS backends (A and
B, own certificates from a CA made here), the three proxies routing a.bench.test → A, b.bench.test →
B and anything else → A with a PROXY header, and wrk / curl / bench/hold_connections.py as clients.
Every process started here runs in its own process group and is stopped by PID at exit.

Prints one Markdown table and ratio lines, and writes them, the machine description and every raw
sample to bench/results/YYYY-MM-DD-<hostname>.md/.json. See docs/performance.md.

Needs root (wrk runs in a private mount namespace with its own /etc/hosts), haproxy, nginx with the
stream module, wrk, curl and openssl: `make bench` installs them (bench/install-deps).
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("TAILGATE_BINARY", os.path.join(ROOT, ".build/release/tailgate"))
TAILGATE_SPREAD = None  # --tailgate-spread; None leaves tailgate's default
CANDIDATE = None  # --candidate: a second tailgate binary measured as the row "candidate"
CANDIDATE_DENY_LIST = 0  # --candidate-deny-list N: the candidate's listener denies N prefixes no client is in
CANDIDATE_LOG_LEVEL = None  # --candidate-log-level LEVEL: the candidate's [log] level
PROBE = None  # --probe BIN: bench/kernel_probe's relay, measured as rows probe-kernel and probe-splice
PROBE_OBJECT = None  # its BPF object
PROBES = ("probe-kernel", "probe-kernel-skb", "probe-kernel-park", "probe-splice")
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
ROWS = ("direct", "haproxy", "nginx", "tailgate")
TAILGATES = ("tailgate", "candidate")   # rows run by a tailgate binary, with the same configuration
PROXIES = ("haproxy", "nginx", "tailgate")
HOSTS = {"a": "a.bench.test", "b": "b.bench.test"}
BULK_SIZE = 1 << 30          # the bulk file: 1 GiB
SOURCE_ADDRESS = "127.0.0.7"  # curl's source address in the correctness checks
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "3")),
                   help="interleaved rounds; each table cell is the median (default 3)")
    p.add_argument("--duration", type=float, default=float(env("BENCH_DURATION", "10")),
                   help="seconds per wrk run (default 10)")
    p.add_argument("--hold", type=int, default=int(env("BENCH_HOLD", "5000")),
                   help="idle TLS connections held for the memory column (default 5000)")
    p.add_argument("--only", default=env("BENCH_ONLY", ",".join(ROWS)),
                   help=f"comma-separated rows among {','.join(ROWS)}")
    p.add_argument("--quick", action="store_true", default=env("BENCH_QUICK") == "1",
                   help="development run: 1 round, 3 s per wrk run, 1000 held connections")
    p.add_argument("--metrics", default=env("BENCH_METRICS", "memory,connections,keepalive,bulk,http"),
                   help="comma-separated measurements among memory,connections,keepalive,bulk,http "
                        "(a subset is a development run: saved as -partial, never over a full one)")
    p.add_argument("--skip-reload", action="store_true", default=env("BENCH_SKIP_RELOAD") == "1",
                   help="do not run bench/reload_latency.py at the end")
    p.add_argument("--tailgate-spread", choices=("load", "all"), default=env("BENCH_TAILGATE_SPREAD"),
                   help="tailgate's [global] accept_spread (default: tailgate's own default, \"load\"); "
                        "a run with it set is saved as -spread-VALUE, never over a default one")
    p.add_argument("--candidate", default=env("BENCH_CANDIDATE"), metavar="BINARY",
                   help="also measure this tailgate binary, same configuration, as the row \"candidate\", "
                        "paired by round with tailgate (to judge a change; saved as -candidate)")
    p.add_argument("--candidate-deny-list", type=int, default=int(env("BENCH_CANDIDATE_DENY_LIST", "0")), metavar="N",
                   help="give the candidate's listener a deny list of N prefixes that match no client (the cost of "
                        "an access list per connection; use --candidate with the same binary as tailgate)")
    p.add_argument("--candidate-log-level", choices=("debug", "info", "warning", "error"),
                   default=env("BENCH_CANDIDATE_LOG_LEVEL"), metavar="LEVEL",
                   help="give the candidate this [log] level (warning: no connection lines; the cost of the connection "
                        "log, with --candidate the same binary as tailgate)")
    p.add_argument("--probe", metavar="BIN",
                   help="also measure bench/kernel_probe's relay (built by bench/kernel_probe/build) as rows probe-kernel "
                        "(bytes moved by a sockmap stream-verdict program), probe-kernel-skb (the same program attached "
                        "as an skb verdict), probe-kernel-park (park.bpf.o: the redirect with a bound on what is queued toward the "
                        "peer, past which the sender's bytes are parked and delivered by user space) and probe-splice (the same "
                        "relay with splice)")
    p.add_argument("--probe-object", metavar="OBJ", help="the probe's BPF object (default: relay.bpf.o beside BIN)")
    p.add_argument("--results-dir", default=os.path.join(ROOT, "bench", "results"))
    p.add_argument("--keep-workdir", action="store_true", help="keep configs and logs (printed path)")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.duration, args.hold = 1, 3.0, 1000
    args.only = [r.strip() for r in args.only.split(",") if r.strip()]
    if args.candidate:
        if not os.access(args.candidate, os.X_OK):
            p.error(f"--candidate {args.candidate}: not an executable file")
        args.candidate = os.path.abspath(args.candidate)
        if "tailgate" not in args.only:
            p.error("--candidate is paired with the tailgate row: keep tailgate in --only")
        if "candidate" not in args.only:
            args.only.append("candidate")
    if args.probe:
        args.probe = os.path.abspath(args.probe)
        args.probe_object = os.path.abspath(args.probe_object or os.path.join(os.path.dirname(args.probe), "relay.bpf.o"))
        if not set(PROBES) & set(args.only):  # no probe row named: all of them
            args.only.extend(PROBES)
    unknown = set(args.only) - set(ROWS) - ({"candidate"} if args.candidate else set()) - (set(PROBES) if args.probe else set())
    if unknown:
        p.error(f"unknown rows: {', '.join(sorted(unknown))}")
    args.metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = set(args.metrics) - {name for name, _ in METRICS}
    if unknown:
        p.error(f"unknown measurements: {', '.join(sorted(unknown))}")
    return args


# ── Processes: every child in its own process group, stopped by PID ─────────────────────────────

class Processes:
    """The long-running processes of this run (backends, proxies). stop_all() ends each group."""

    def __init__(self):
        self.started = []

    def start(self, name, argv, stdout_path, **kwargs):
        out = open(stdout_path, "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, **kwargs)
        out.close()
        self.started.append((name, proc))
        return proc

    def stop(self, proc):
        stop_group(proc)
        self.started = [(n, p) for n, p in self.started if p is not proc]

    def stop_all(self):
        for name, proc in reversed(self.started):
            stop_group(proc)
        self.started.clear()


def stop_group(proc, grace=10.0):
    """SIGTERM to the process group we created for proc (its PGID is its PID), then SIGKILL."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_client(argv, timeout):
    """Runs a short-lived client (wrk, curl) in its own process group; returns (rc, stdout, stderr)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        stop_group(proc, grace=2.0)
        raise
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def raise_nofile_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ── /proc: CPU time and resident memory of a process and its descendants ────────────────────────

def process_tree(pid):
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children") as f:
                    todo += [int(child) for child in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return pids


def cpu_seconds(pids):
    """utime + stime of the processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return ticks / CLK_TCK


def rss_kib(pids, field="VmRSS:"):
    """Sum of a /proc/PID/status memory field: VmRSS (all resident pages, including clean pages of the
    binary and libraries, which the kernel can drop and share) or RssAnon (private memory)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field):
                        total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


# ── Certificates ─────────────────────────────────────────────────────────────────────────────────

def openssl(*argv):
    subprocess.run(["openssl", *argv], check=True, capture_output=True)


def make_certificates(workdir):
    """A throwaway CA and one ECDSA P-256 certificate per backend name; returns paths."""
    d = os.path.join(workdir, "certs")
    os.makedirs(d)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", ca_key, "-out", ca, "-days", "3", "-subj", "/CN=tailgate bench CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    certs = {"ca": ca}
    for name, host in HOSTS.items():
        key, csr, pem, ext = (os.path.join(d, f"{name}.{s}") for s in ("key", "csr", "pem", "ext"))
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                    "keyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={host}")
        openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                "-out", pem, "-days", "3", "-extfile", ext)
        certs[name] = (pem, key)
    return certs


def write_hosts_file(workdir):
    """/etc/hosts for the load generator's private mount namespace only."""
    path = os.path.join(workdir, "hosts")
    with open(path, "w") as f:
        f.write("127.0.0.1 localhost\n127.0.0.1 " + " ".join(HOSTS.values()) + " c.bench.test\n")
    os.chmod(path, 0o644)
    return path


# ── Backends: one nginx, server A and server B, each with a plain and a proxy_protocol listen ────

def nginx_temp_paths(prefix):
    return "\n".join(f"    {kind}_temp_path {prefix}/tmp/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def backend_config(prefix, certs, ports, nofile):
    servers = []
    for name, host in HOSTS.items():
        # Port 80's backend: plain HTTP, with and without PROXY protocol.
        servers.append(f"""
    server {{
        listen 127.0.0.1:{ports[name]['http']};
        listen 127.0.0.1:{ports[name]['httppp']} proxy_protocol;
        server_name {host};
        location = / {{ return 200 "backend={name.upper()} client=$bench_client\\n"; }}
    }}""")
    for name, host in HOSTS.items():
        pem, key = certs[name]
        servers.append(f"""
    server {{
        listen 127.0.0.1:{ports[name]['plain']} ssl;
        listen 127.0.0.1:{ports[name]['pp']} ssl proxy_protocol;
        server_name {host};
        ssl_certificate {pem};
        ssl_certificate_key {key};
        root {prefix}/www;
        location = / {{ return 200 "backend={name.upper()} client=$bench_client\\n"; }}
        location /files/ {{ }}
    }}""")
    return f"""# generated by bench/bench.py
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {prefix}/backend.pid;
error_log {prefix}/backend.log error;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    client_header_timeout 600s;
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
    ssl_session_cache off;
{nginx_temp_paths(prefix)}
    # The client as the backend sees it: from the PROXY header on proxy_protocol listens.
    # (nginx's http proxy, which cannot send PROXY headers, passes X-Forwarded-For instead.)
    map $proxy_protocol_addr $bench_pp_client {{ "" $remote_addr; default $proxy_protocol_addr; }}
    map $http_x_forwarded_for $bench_client {{ "" $bench_pp_client; default $http_x_forwarded_for; }}
{''.join(servers)}
}}
"""


def start_backends(procs, workdir, certs, nofile):
    prefix = os.path.join(workdir, "backend")
    for sub in ("www/files", "tmp"):
        os.makedirs(os.path.join(prefix, sub))
    os.chmod(prefix, 0o755)
    for sub in ("www", "www/files"):
        os.chmod(os.path.join(prefix, sub), 0o755)
    big = os.path.join(prefix, "www/files/big.bin")
    with open(big, "wb") as f:
        f.truncate(BULK_SIZE)   # sparse: served from the page cache, no disk in the measurement
    os.chmod(big, 0o644)
    ports = {name: {"plain": free_port(), "pp": free_port(), "http": free_port(), "httppp": free_port()} for name in HOSTS}
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(backend_config(prefix, certs, ports, nofile))
    proc = procs.start("backend", ["nginx", "-p", prefix, "-c", conf, "-e", f"{prefix}/backend.log"],
                       os.path.join(prefix, "stdout.log"))
    for name in HOSTS:
        wait_for_port(ports[name]["plain"], proc)
    return {"proc": proc, "ports": ports, "log": f"{prefix}/backend.log", "config": conf}


# ── Proxies: same routes (a → A, b → B, default → A), PROXY header to the backends' pp listens ───

def deny_list_file(prefix, count):
    """A list file of `count` distinct /29 prefixes in 198.18.0.0/15 and 2001:db8::/32, none of them
    loopback: every connection is looked up and passes."""
    path = os.path.join(prefix, "deny.txt")
    with open(path, "w") as f:
        for index in range(count):
            if index % 2 == 0:
                n = index // 2
                f.write(f"198.{18 + (n >> 13) % 2}.{(n >> 5) & 255}.{(n & 31) * 8}/29\n")
            else:
                f.write(f"2001:db8:{index:x}::/48\n")
    return path


def tailgate_config(port, ports, spread=None, deny_list=None, http_port=None, log_level=None):
    spread_table = f'[global]\naccept_spread = "{spread}"\n\n' if spread else ""
    spread_table += f'[log]\nlevel = "{log_level}"\n\n' if log_level else ""
    lists = f'[lists]\nbench_deny = {{ file = "{deny_list}" }}\n\n' if deny_list else ""
    deny = 'deny = ["@bench_deny"]\n' if deny_list else ""
    return f"""# generated by bench/bench.py; default log settings (info: one line per connection)
{spread_table}{lists}[listeners.bench]
bind = ["127.0.0.1:{port}"]
default = "a"
max_connections = 20000
{deny}
[listeners.bench.routes]
"{HOSTS['a']}" = "a"
"{HOSTS['b']}" = "b"

[upstreams.a]
servers = ["127.0.0.1:{ports['a']['pp']}"]
send_proxy = "v2"

[upstreams.b]
servers = ["127.0.0.1:{ports['b']['pp']}"]
send_proxy = "v2"
{tailgate_http_config(http_port, ports) if http_port else ""}"""


def tailgate_http_config(port, ports):
    return f"""
[listeners.bench_http]
bind = ["127.0.0.1:{port}"]
protocol = "http"
default = "a_http"
max_connections = 20000

[listeners.bench_http.routes]
"{HOSTS['a']}" = "a_http"
"{HOSTS['b']}" = "b_http"

[upstreams.a_http]
servers = ["127.0.0.1:{ports['a']['httppp']}"]
send_proxy = "v2"

[upstreams.b_http]
servers = ["127.0.0.1:{ports['b']['httppp']}"]
send_proxy = "v2"
"""


def haproxy_config(port, ports, http_port=None):
    return f"""# generated by bench/bench.py
global
    nbthread 2
    maxconn 9000

defaults
    mode tcp
    timeout connect 3s
    timeout client 10m
    timeout server 10m

frontend bench
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req.ssl_hello_type 1 }}
    use_backend b if {{ req.ssl_sni -i {HOSTS['b']} }}
    use_backend a if {{ req.ssl_sni -i {HOSTS['a']} }}
    default_backend a

backend a
    server a 127.0.0.1:{ports['a']['pp']} send-proxy-v2

backend b
    server b 127.0.0.1:{ports['b']['pp']} send-proxy-v2
{haproxy_http_config(http_port, ports) if http_port else ""}"""


def haproxy_http_config(port, ports):
    """Port 80 as HAProxy users route it without terminating HTTP: mode tcp, the Host header read after
    inspect-delay (mode http would parse and rewrite every request: not the same job)."""
    return f"""
frontend bench_http
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 5s
    tcp-request content accept if HTTP
    use_backend b_http if {{ req.hdr(host),field(1,:) -i {HOSTS['b']} }}
    default_backend a_http

backend a_http
    server a 127.0.0.1:{ports['a']['httppp']} send-proxy-v2

backend b_http
    server b 127.0.0.1:{ports['b']['httppp']} send-proxy-v2
"""


def nginx_http_config(prefix, port, ports):
    """Port 80 in nginx: an http proxy by Host (nginx's http proxy cannot send a PROXY header: it passes
    the client in X-Forwarded-For), no keep-alive upstream, as a default install proxies."""
    return f"""
http {{
    access_log off;
{nginx_temp_paths(prefix)}
    upstream a_http {{ server 127.0.0.1:{ports['a']['http']}; }}
    upstream b_http {{ server 127.0.0.1:{ports['b']['http']}; }}
    map $host $bench_http_upstream {{ {HOSTS['b']} b_http; default a_http; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://$bench_http_upstream;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


def nginx_stream_config(prefix, port, ports, nofile, http_port=None):
    return f"""# generated by bench/bench.py
load_module {NGINX_STREAM_MODULE};
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/nginx.log error;
events {{ worker_connections 20000; }}
stream {{
    map $ssl_preread_server_name $bench_upstream {{
        {HOSTS['a']} a;
        {HOSTS['b']} b;
        default a;
    }}
    upstream a {{ server 127.0.0.1:{ports['a']['pp']}; }}
    upstream b {{ server 127.0.0.1:{ports['b']['pp']}; }}
    server {{
        listen 127.0.0.1:{port};
        ssl_preread on;
        proxy_pass $bench_upstream;
        proxy_protocol on;
    }}
}}
{nginx_http_config(prefix, http_port, ports) if http_port else ""}"""


def start_proxy(procs, kind, workdir, backend_ports, nofile):
    prefix = os.path.join(workdir, kind)
    os.makedirs(prefix, exist_ok=True)
    port, http_port = free_port(), free_port()
    logfile = os.path.join(prefix, f"{kind}.log")
    if kind in PROBES:
        # Everything to backend A's PROXY-protocol listen; no port 80.
        conf = os.path.join(prefix, "probe.args")
        program = os.path.join(os.path.dirname(PROBE_OBJECT), "park.bpf.o") if kind == "probe-kernel-park" else PROBE_OBJECT
        argv = [PROBE, str(port), str(backend_ports["a"]["pp"]), kind.split("-", 1)[1], program]
        with open(conf, "w") as f:
            f.write(" ".join(argv) + "\n")
        proc = procs.start(kind, argv, logfile)
        wait_for_port(port, proc)
        return {"name": kind, "proc": proc, "port": port, "http_port": None, "log": logfile, "config": conf, "single_backend": True,
                "restart": lambda: start_proxy(procs, kind, workdir, backend_ports, nofile)}
    if kind in TAILGATES:
        conf = os.path.join(prefix, "tailgate.toml")
        deny_list = deny_list_file(prefix, CANDIDATE_DENY_LIST) if kind == "candidate" and CANDIDATE_DENY_LIST else None
        with open(conf, "w") as f:
            log_level = CANDIDATE_LOG_LEVEL if kind == "candidate" else None
            f.write(tailgate_config(port, backend_ports, TAILGATE_SPREAD, deny_list, http_port, log_level))
        argv = [CANDIDATE if kind == "candidate" else BINARY, "run", "--config", conf]
    elif kind == "haproxy":
        conf = os.path.join(prefix, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(haproxy_config(port, backend_ports, http_port))
        subprocess.run(["haproxy", "-c", "-q", "-f", conf], check=True)
        argv = ["haproxy", "-db", "-f", conf]
    else:
        conf = os.path.join(prefix, "nginx.conf")
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)   # the http proxy's temp paths
        with open(conf, "w") as f:
            f.write(nginx_stream_config(prefix, port, backend_ports, nofile, http_port))
        argv = ["nginx", "-p", prefix, "-c", conf, "-e", logfile]
    proc = procs.start(kind, argv, logfile)
    wait_for_port(port, proc)
    wait_for_port(http_port, proc)
    return {"name": kind, "proc": proc, "port": port, "http_port": http_port, "log": logfile, "config": conf,
            "restart": lambda: start_proxy(procs, kind, workdir, backend_ports, nofile)}


def restart_proxy(procs, row):
    """Stops the row's proxy and starts a fresh one (new port, same configuration otherwise)."""
    procs.stop(row["proc"])
    row.update(row["restart"]())


def direct_row(backend):
    return {"name": "direct", "proc": None, "log": None,
            "port": backend["ports"]["a"]["plain"], "http_port": backend["ports"]["a"]["http"],
            "ports_by_sni": {HOSTS[n]: backend["ports"][n]["plain"] for n in HOSTS}}


def row_port(row, host):
    return row.get("ports_by_sni", {}).get(host, row["port"])


def row_pids(row):
    return process_tree(row["proc"].pid) if row["proc"] else []


# ── Clients ──────────────────────────────────────────────────────────────────────────────────────

def curl(port, host, path="/", source=None, cafile=None, extra=()):
    argv = ["curl", "-sS", "--tlsv1.3", "--max-time", "120", "--resolve", f"{host}:{port}:127.0.0.1"]
    argv += ["--cacert", cafile] if cafile else ["--insecure"]
    if source:
        argv += ["--interface", source]
    argv += [*extra, f"https://{host}:{port}{path}"]
    return run_client(argv, timeout=150)


def in_hosts_namespace(hosts_file, argv):
    """argv run in a private mount namespace where hosts_file is /etc/hosts (wrk takes the SNI from the
    URL, so the name must resolve; the rest of the machine keeps its /etc/hosts)."""
    return ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hosts_file, *argv]


def check_hosts_namespace(hosts_file):
    rc, out, err = run_client(in_hosts_namespace(hosts_file, ["getent", "hosts", HOSTS["a"]]), timeout=10)
    if rc != 0 or not out.startswith("127.0.0.1"):
        raise RuntimeError(f"private /etc/hosts does not work (need root and unshare): {out}{err}")


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_latency_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(out):
    result = {"requests": None, "rps": None, "non2xx": 0,
              "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}, "latency_ms": {}}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if m:
        result["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        result["rps"] = float(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        result["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        result["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    for pct, value in re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.M):
        result["latency_ms"][pct] = parse_latency_ms(value)
    return result


def wrk(ctx, row, connections, extra):
    port = row_port(row, HOSTS["a"])
    argv = in_hosts_namespace(ctx["hosts"], ["wrk", "-t1", f"-c{connections}", f"-d{ctx['duration']:g}s",
                                              *extra, f"https://{HOSTS['a']}:{port}/"])
    rc, out, err = run_client(argv, timeout=ctx["duration"] + 60)
    result = parse_wrk(out)
    result["raw"] = out
    problems = []
    if rc != 0 or result["requests"] is None:
        problems.append(f"wrk exit {rc}: {err.strip()[:200]}")
    if result["non2xx"]:
        problems.append(f"{result['non2xx']} non-2xx responses")
    errors = {k: v for k, v in result["socket_errors"].items() if v}
    if errors:
        problems.append("socket errors " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    result["problems"] = problems
    return result


# ── Correctness, before a row is measured ────────────────────────────────────────────────────────

def check_row(ctx, row):
    """SNI a → A, b → B, unknown → A (proxies), and the backend saw the client's own address."""
    problems = []
    cases = [(HOSTS["a"], "A", ctx["ca"])] + ([] if row.get("single_backend") else [(HOSTS["b"], "B", ctx["ca"])])
    if row["name"] != "direct" and not row.get("single_backend"):
        cases.append(("c.bench.test", "A", None))   # no route: the default, with A's certificate
    for host, backend, ca in cases:
        rc, out, err = curl(row_port(row, host), host, source=SOURCE_ADDRESS, cafile=ca)
        expected = f"backend={backend} client={SOURCE_ADDRESS}"
        if rc != 0 or out.strip() != expected:
            problems.append(f"SNI {host}: expected '{expected}', got '{out.strip()}' {err.strip()[:200]}")
    if row["name"] != "direct" and row.get("http_port"):
        # Port 80: the Host routes, and the backend learns the client's address.
        for host, backend in ((HOSTS["a"], "A"), (HOSTS["b"], "B"), ("c.bench.test", "A")):
            rc, out, err = run_client(["curl", "-sS", "--max-time", "30", "--interface", SOURCE_ADDRESS, "-H", f"Host: {host}",
                                       f"http://127.0.0.1:{row['http_port']}/"], timeout=60)
            expected = f"backend={backend} client={SOURCE_ADDRESS}"
            if rc != 0 or out.strip() != expected:
                problems.append(f"Host {host} on :80: expected '{expected}', got '{out.strip()}' {err.strip()[:200]}")
    return problems


# ── Measurements ─────────────────────────────────────────────────────────────────────────────────

def machine_busy_seconds():
    """CPU time of the whole machine not idle (every process, kernel thread and softirq), in seconds. A
    relay whose bytes move in the kernel does its work in softirq and kernel worker context, charged to no
    process of its own: only the machine's total compares it fairly with a user-space relay."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def measure_wrk(ctx, row, connections, extra):
    pids = row_pids(row)
    backend_pids = process_tree(ctx["backend"]["proc"].pid)
    cpu0, bcpu0, machine0 = cpu_seconds(pids), cpu_seconds(backend_pids), machine_busy_seconds()
    result = wrk(ctx, row, connections, extra)
    cpu, bcpu, machine = cpu_seconds(pids) - cpu0, cpu_seconds(backend_pids) - bcpu0, machine_busy_seconds() - machine0
    result.update(proxy_cpu_s=cpu if pids else None, backend_cpu_s=bcpu, machine_cpu_s=machine)
    return result


def measure_connections(ctx, row):
    r = measure_wrk(ctx, row, 32, ["-H", "Connection: close"])
    n = r["requests"] or 0
    r["conn_per_s"] = r["rps"]
    r["cpu_ms_per_1k"] = r["proxy_cpu_s"] * 1e6 / n if n and r["proxy_cpu_s"] is not None else None
    return r


def measure_http(ctx, row):
    """Port 80: a new plain-HTTP connection per request, routed by Host (the redirect and ACME traffic of
    an edge; nothing is kept alive)."""
    pids = row_pids(row)
    cpu0 = cpu_seconds(pids)
    argv = in_hosts_namespace(ctx["hosts"], ["wrk", "-t1", "-c32", f"-d{ctx['duration']:g}s", "-H", "Connection: close",
                                              f"http://{HOSTS['a']}:{row['http_port']}/"])
    rc, out, err = run_client(argv, timeout=ctx["duration"] + 60)
    cpu = cpu_seconds(pids) - cpu0
    r = parse_wrk(out)
    r["raw"] = out
    r["problems"] = []
    if rc != 0 or r["requests"] is None:
        r["problems"].append(f"wrk exit {rc}: {err.strip()[:200]}")
    if r["non2xx"]:
        r["problems"].append(f"{r['non2xx']} non-2xx responses")
    errors = {k: v for k, v in r["socket_errors"].items() if v}
    if errors:
        r["problems"].append("socket errors " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    n = r["requests"] or 0
    r["http_conn_per_s"] = r["rps"]
    r["http_cpu_ms_per_1k"] = cpu * 1e6 / n if n and pids else None
    return r


def measure_keepalive(ctx, row):
    r = measure_wrk(ctx, row, 50, ["--latency"])
    n = r["requests"] or 0
    r["req_per_s"] = r["rps"]
    r["p50_ms"] = r["latency_ms"].get("50")
    r["p99_ms"] = r["latency_ms"].get("99")
    r["cpu_us_per_req"] = r["proxy_cpu_s"] * 1e6 / n if n and r["proxy_cpu_s"] is not None else None
    r["machine_cpu_us_per_req"] = r["machine_cpu_s"] * 1e6 / n if n else None
    return r


def measure_bulk(ctx, row):
    pids = row_pids(row)
    cpu0, machine0 = cpu_seconds(pids), machine_busy_seconds()
    port = row_port(row, HOSTS["a"])
    rc, out, err = curl(port, HOSTS["a"], path="/files/big.bin", cafile=ctx["ca"],
                        extra=["-o", "/dev/null", "-w", "%{speed_download} %{size_download} %{http_code}"])
    cpu, machine = cpu_seconds(pids) - cpu0, machine_busy_seconds() - machine0
    r = {"problems": []}
    try:
        speed, size, code = out.split()
        r.update(bytes=int(float(size)), http_code=int(code), mb_per_s=float(speed) / 1e6)
    except ValueError:
        r["problems"].append(f"curl exit {rc}: {err.strip()[:200]}")
        return r
    if rc != 0 or r["http_code"] != 200 or r["bytes"] != BULK_SIZE:
        r["problems"].append(f"curl exit {rc}, HTTP {r['http_code']}, {r['bytes']} of {BULK_SIZE} bytes")
    r["proxy_cpu_s"] = cpu if pids else None
    r["cpu_ms_per_gib"] = cpu * 1000 / (r["bytes"] / (1 << 30)) if pids and r["bytes"] else None
    r["machine_cpu_ms_per_gib"] = machine * 1000 / (r["bytes"] / (1 << 30)) if r["bytes"] else None
    return r


def measure_memory(ctx, row):
    """On a freshly started proxy: RSS after one warm-up request, then while holding ctx['hold'] idle TLS
    connections (one request done on each), then after they closed. A fresh process each round, as
    allocators keep memory once used: a second hold in the same process would look almost free."""
    if not row["proc"]:
        return {"problems": [], "skipped": "no proxy process"}
    restart_proxy(ctx["procs"], row)
    problems = check_row(ctx, row)
    if problems:
        return {"problems": ["after restart: " + "; ".join(problems)]}
    before = idle_rss(ctx, row)
    anon_before = rss_kib(row_pids(row), "RssAnon:")
    argv = [sys.executable, os.path.join(ROOT, "bench", "hold_connections.py"), "--port", str(row["port"]),
            "--sni", HOSTS["a"], "--count", str(ctx["hold"]), "--cafile", ctx["ca"]]
    holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True, text=True)
    r = {"problems": [], "rss_idle_kib": before, "anon_idle_kib": anon_before, "held": ctx["hold"]}
    try:
        ready, _, _ = select.select([holder.stdout], [], [], 600)
        line = holder.stdout.readline().strip() if ready else "no answer within 600 s"
        r["holder"] = line
        m = re.match(r"ready established=(\d+) failed=(\d+)", line)
        if not m:
            r["problems"].append(f"holder: {line} {holder.stderr.read()[:300] if holder.poll() is not None else ''}")
            return r
        established, failed = int(m.group(1)), int(m.group(2))
        if failed:
            r["problems"].append(f"{failed} of {ctx['hold']} connections failed: {line}")
        time.sleep(1.0)    # let the proxy finish bookkeeping for the last connections
        held = rss_kib(row_pids(row))
        r.update(rss_held_kib=held, established=established,
                 kib_per_conn=(held - before) / established if established else None)
    finally:
        stop_group(holder, grace=10.0)
    time.sleep(2.0)        # the proxy sees the closes
    r["rss_after_kib"] = rss_kib(row_pids(row))
    return r


def idle_rss(ctx, row):
    """Resident memory after start and one warm-up request."""
    curl(row_port(row, HOSTS["a"]), HOSTS["a"], cafile=ctx["ca"])
    time.sleep(0.5)
    return rss_kib(row_pids(row))


METRICS = [("memory", measure_memory), ("connections", measure_connections),
           ("keepalive", measure_keepalive), ("bulk", measure_bulk), ("http", measure_http)]


def round_order(rows, rnd):
    """The rows in the order round `rnd` (from 1) measures them: rotated by one row each round, so that no row
    always runs first, last or right after the same other row (a row can leave the machine busier for the next,
    e.g. with sockets in TIME_WAIT or a backend that has just served 50 connections)."""
    shift = (rnd - 1) % len(rows) if rows else 0
    return rows[shift:] + rows[:shift]


def run_rounds(ctx, rows, samples, failures):
    for rnd in range(1, ctx["rounds"] + 1):
        for metric, measure in METRICS:
            if metric not in ctx["metrics"]:
                continue
            for row in round_order(rows, rnd):
                if row["name"] in failures:
                    continue
                log(f"round {rnd}/{ctx['rounds']}: {metric} via {row['name']}")
                result = measure(ctx, row)
                if not result["problems"]:
                    result.pop("raw", None)   # wrk's full output is kept only when something failed
                result["round"] = rnd
                samples[row["name"]][metric].append(result)
                if result["problems"]:
                    log(f"  {row['name']} {metric}: " + "; ".join(result["problems"]))
                time.sleep(1.0)


# ── Report ───────────────────────────────────────────────────────────────────────────────────────

COLUMNS = [  # (header, metric, key, format)
    ("conn/s", "connections", "conn_per_s", "{:,.0f}"),
    ("CPU-ms/1k conns", "connections", "cpu_ms_per_1k", "{:,.0f}"),
    ("keep-alive req/s", "keepalive", "req_per_s", "{:,.0f}"),
    ("p50", "keepalive", "p50_ms", "{:.2f} ms"),
    ("p99", "keepalive", "p99_ms", "{:.2f} ms"),
    ("CPU-µs/req", "keepalive", "cpu_us_per_req", "{:,.1f}"),
    ("machine CPU-µs/req", "keepalive", "machine_cpu_us_per_req", "{:,.1f}"),
    ("MB/s", "bulk", "mb_per_s", "{:,.0f}"),
    ("CPU-ms/GiB", "bulk", "cpu_ms_per_gib", "{:,.0f}"),
    ("machine CPU-ms/GiB", "bulk", "machine_cpu_ms_per_gib", "{:,.0f}"),
    ("RSS idle", "memory", "rss_idle_kib", "{:,.0f} KiB"),
    ("private idle", "memory", "anon_idle_kib", "{:,.0f} KiB"),
    ("KiB/conn @{hold}", "memory", "kib_per_conn", "{:.1f}"),
    (":80 conn/s", "http", "http_conn_per_s", "{:,.0f}"),
    (":80 CPU-ms/1k", "http", "http_cpu_ms_per_1k", "{:,.0f}"),
]


def median_of(samples, row, metric, key):
    values = [s[key] for s in samples[row][metric] if not s["problems"] and s.get(key) is not None]
    return statistics.median(values) if values else None


def cell(samples, row, metric, key, fmt):
    if any(s["problems"] for s in samples[row][metric]):
        return "FAILED"
    value = median_of(samples, row, metric, key)
    return "—" if value is None else fmt.format(value)


def results_table(ctx, rows, samples, failures):
    headers = ["row"] + [c[0].format(hold=f"{ctx['hold'] // 1000}k" if ctx["hold"] >= 1000 else ctx["hold"])
                         for c in COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|---" + "|---:" * len(COLUMNS) + "|"]
    for name in rows:
        if name in failures:
            reason = "; ".join(failures[name])[:300]
            lines.append(f"| {name} | FAILED: {reason} |" + " |" * (len(COLUMNS) - 1))
            continue
        cells = [cell(samples, name, m, k, f) for _, m, k, f in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_lines(samples, rows, failures):
    if "tailgate" not in rows or "tailgate" in failures:
        return []
    lines = []
    for other in ("haproxy", "nginx", "direct"):
        if other not in rows or other in failures:
            continue
        parts = []
        for header, metric, key, _ in COLUMNS:
            t, o = median_of(samples, "tailgate", metric, key), median_of(samples, other, metric, key)
            if t is not None and o:
                parts.append(f"{header.format(hold='')} ×{t / o:.2f}".replace(" @", ""))
        lines.append(f"- tailgate / {other}: " + ", ".join(parts))
    if lines:
        lines.append("\n(tailgate ÷ other, medians: above 1 is better for conn/s, req/s and MB/s; "
                     "below 1 is better for latency, CPU and memory.)")
        lines += paired_lines(samples, rows, failures)
    return lines


HIGHER_IS_BETTER = {"conn_per_s", "req_per_s", "mb_per_s", "http_conn_per_s"}


def round_ratios(samples, subject, other, metric, key):
    """subject ÷ other for each round both measured without problems (also used by bench/pooled.py)."""
    def by_round(row):
        return {s["round"]: s[key] for s in samples.get(row, {}).get(metric, [])
                if not s["problems"] and s.get(key) is not None and "round" in s}
    mine, theirs = by_round(subject), by_round(other)
    return [mine[r] / theirs[r] for r in sorted(mine.keys() & theirs.keys()) if theirs[r]]


def paired_lines(samples, rows, failures):
    """Each round measures every row back to back, so the ratio within a round cancels most of the machine's
    drift between rounds (on a shared VM, ±15 % from one round to the next): the median of the per-round
    ratios, and in how many rounds tailgate did better. A candidate binary gets its own table, against
    tailgate first."""
    lines = paired_table(samples, "tailgate", [o for o in ("haproxy", "nginx") if o in rows and o not in failures])
    if "candidate" in rows and "candidate" not in failures:
        others = [o for o in ("tailgate", "haproxy", "nginx") if o in rows and o not in failures]
        lines += paired_table(samples, "candidate", others)
    return lines


def paired_table(samples, subject, others):
    if max((len(v) for v in samples[subject].values()), default=0) < 2 or not others:
        return []
    lines = ["", f"Paired by round (median of the per-round ratios {subject} ÷ other; rounds where {subject} "
                 "did better):", "", "| | " + " | ".join(f"÷ {o}" for o in others) + " |",
             "|---" + "|---:" * len(others) + "|"]
    for header, metric, key, _ in COLUMNS:
        cells = []
        for other in others:
            ratios = round_ratios(samples, subject, other, metric, key)
            if not ratios:
                cells.append("—")
                continue
            better = sum(1 for q in ratios if (q > 1 if key in HIGHER_IS_BETTER else q < 1))
            cells.append(f"×{statistics.median(ratios):.2f} ({better}/{len(ratios)})")
        if any(c != "—" for c in cells):
            lines.append(f"| {header.format(hold='').replace(' @', '')} | " + " | ".join(cells) + " |")
    return lines


def command_output(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unavailable"


def machine_description():
    def first(path, prefix):
        try:
            with open(path) as f:
                return next((l.split(":", 1)[1].strip() for l in f if l.startswith(prefix)), "?")
        except OSError:
            return "?"
    commit = command_output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    mem_kib = int(first("/proc/meminfo", "MemTotal").split()[0])
    return {
        "host": socket.gethostname(),
        "cpu": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "ram": f"{mem_kib / (1 << 20):.1f} GiB",
        "kernel": platform.release(),
        "debian": open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else "?",
        "haproxy": command_output(["haproxy", "-v"]),
        "nginx": command_output(["nginx", "-v"]),
        "wrk": command_output(["wrk", "-v"]).split("Copyright")[0].strip(),
        "openssl": command_output(["openssl", "version"]),
        "curl": command_output(["curl", "--version"]).split(" (")[0],
        "python": platform.python_version(),
        "tailgate": f"{command_output([BINARY, '--version'])} ({BINARY})",
        **({"candidate": f"{command_output([CANDIDATE, '--version'])} ({CANDIDATE})"} if CANDIDATE else {}),
        "commit": commit + (" (working tree modified)" if dirty else ""),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }


def log_summary(rows_by_name):
    """What the proxies wrote to their logs: tailgate's outcomes and anything not info, others' lines."""
    notes = []
    for name, row in rows_by_name.items():
        if not row.get("log") or not os.path.exists(row["log"]):
            continue
        with open(row["log"], errors="replace") as f:
            lines = f.read().splitlines()
        if name in TAILGATES:
            outcomes, other = {}, []
            for line in lines:
                m = re.search(r" outcome=(\S+)", line)
                if " info connection " in line and m:
                    reason = re.search(r' reason=("[^"]*"|\S+)', line)
                    key = m.group(1) + (f" (reason={reason.group(1)[:120]})" if reason else "")
                    outcomes[key] = outcomes.get(key, 0) + 1
                elif " info " not in line:
                    other.append(line)
            notes.append(f"{name} log: {len(lines):,} lines ({os.path.getsize(row['log']) / 1e6:.1f} MB); "
                         f"connection outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())))
            if other:
                notes.append(f"{name} log: {len(other)} lines not at info level, e.g. `{other[0][:300]}`")
        elif lines:
            notes.append(f"{name} log: {len(lines)} lines, e.g. `{lines[-1][:300]}`")
    return notes


def run_reload_latency():
    env = dict(os.environ, TAILGATE_BINARY=BINARY)
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "reload_latency.py")],
                       capture_output=True, text=True, env=env, timeout=900)
    return p.stdout.strip() if p.returncode == 0 else f"reload_latency.py failed ({p.returncode}): {p.stderr[-500:]}"


FAIRNESS = """\
- Every proxy gets 2 threads/workers (the machine's cores): HAProxy `nbthread 2`, nginx stream
  `worker_processes 2`, tailgate one relay thread per core (its default). tailgate's default
  `accept_spread = "load"` lets its second thread accept only while the first is busy or waiting for a CPU
  more than 70 % of the time, and hands it half its connections once the first is on a CPU more
  than 40 % of the time (`--tailgate-spread all` makes both accept from the start, as HAProxy's threads
  and nginx's workers do). The backend nginx has
  1 worker; wrk runs with 1 thread; all share the same cores.
- TLS 1.3 everywhere (the backends allow only TLSv1.3), ECDSA P-256 certificates, session resumption
  off on the backends, so every new connection is a full handshake. The proxies never terminate TLS.
- HAProxy and nginx stream write no per-connection log (their default without a log directive);
  tailgate runs with its default log level `info`, which writes one line per connection (to a file here).
- PROXY protocol: tailgate and HAProxy send v2; nginx stream can only send v1 (`proxy_protocol on`).
- CPU = utime+stime of all the proxy's processes (nginx master+workers) from /proc, before/after each run.
  The direct row has no proxy: its cost and memory cells are empty."""


def render_report(ctx, machine, table, ratios, notes, reload_table):
    mode = "quick" if ctx["quick"] else "full"
    lines = [f"# tailgate benchmark — {machine['date']} on {machine['host']}", "",
             f"Run: {mode} (`--rounds {ctx['rounds']} --duration {ctx['duration']:g} --hold {ctx['hold']}`), "
             f"medians of {ctx['rounds']} interleaved round(s), rows in an order rotated each round, "
             f"took {machine['elapsed_min']:.1f} min.", "",
             "| machine | |", "|---|---|"]
    for key in ("cpu", "cores", "ram", "kernel", "debian", "haproxy", "nginx", "wrk", "openssl", "curl",
                "python", "tailgate", "candidate", "commit"):
        if key in machine:
            lines.append(f"| {key} | {machine[key]} |")
    lines.append(f"| load average (start → end) | {' '.join(machine['loadavg_start'])} → "
                 f"{' '.join(machine['loadavg_end'])} |")
    lines += ["", "## Proxies", "", table, ""] + ratios + ["", "## Notes", "", FAIRNESS] + \
             [f"- {n}" for n in notes]
    if reload_table:
        lines += ["", "## Reload latency (bench/reload_latency.py)", "", reload_table]
    return "\n".join(lines) + "\n"


def save_results(ctx, machine, report, raw):
    os.makedirs(ctx["results_dir"], exist_ok=True)
    # A development run does not replace a full one.
    suffix = "-quick" if ctx["quick"] else "-partial" if len(ctx["metrics"]) < len(METRICS) else ""
    if TAILGATE_SPREAD:
        suffix += f"-spread-{TAILGATE_SPREAD}"
    if CANDIDATE:
        suffix += "-candidate"
    if CANDIDATE_DENY_LIST:
        suffix += f"-deny{CANDIDATE_DENY_LIST}"
    if CANDIDATE_LOG_LEVEL:
        suffix += f"-log-{CANDIDATE_LOG_LEVEL}"
    base = os.path.join(ctx["results_dir"], f"{machine['date']}-{machine['host']}{suffix}")
    # Another run of the same day and kind is kept: this one gets the next free number.
    taken, number = base, 1
    while os.path.exists(base + ".json") or os.path.exists(base + ".md"):
        number += 1
        base = f"{taken}-{number}"
    with open(base + ".md", "w") as f:
        f.write(report)
    with open(base + ".json", "w") as f:
        json.dump(raw, f, indent=1, default=str)
    return base


# ── Main ─────────────────────────────────────────────────────────────────────────────────────────

def preflight(args):
    if os.geteuid() != 0:
        sys.exit("bench.py needs root (wrk runs in a private mount namespace with its own /etc/hosts)")
    if "tailgate" in args.only and not os.access(BINARY, os.X_OK):
        sys.exit(f"{BINARY} not found: run `make release` first (or set TAILGATE_BINARY)")
    for tool in ("wrk", "curl", "openssl", "nginx", "haproxy", "unshare"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: run bench/install-deps")
    if "nginx" in args.only and not os.path.exists(NGINX_STREAM_MODULE):
        sys.exit(f"{NGINX_STREAM_MODULE} missing: run bench/install-deps (libnginx-mod-stream)")


def main():
    global TAILGATE_SPREAD, CANDIDATE, CANDIDATE_DENY_LIST, CANDIDATE_LOG_LEVEL, PROBE, PROBE_OBJECT
    args = parse_args()
    TAILGATE_SPREAD = args.tailgate_spread
    CANDIDATE = args.candidate
    CANDIDATE_DENY_LIST = args.candidate_deny_list
    CANDIDATE_LOG_LEVEL = args.candidate_log_level
    PROBE, PROBE_OBJECT = args.probe, args.probe_object
    preflight(args)
    started = time.monotonic()
    machine = machine_description()
    machine["date"] = datetime.date.today().isoformat()
    nofile = raise_nofile_limit()
    if nofile < 2 * args.hold + 1000:
        log(f"warning: open file limit {nofile} is low for {args.hold} held connections")
    procs = Processes()
    workdir = tempfile.mkdtemp(prefix="tailgate-bench-")
    os.chmod(workdir, 0o711)   # nginx workers (user nobody) read the backend's files below it
    old_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # run the cleanup below
    signal.signal(signal.SIGINT, signal.default_int_handler)             # also when started with & 
    try:
        log(f"work directory {workdir}")
        certs = make_certificates(workdir)
        hosts = write_hosts_file(workdir)
        check_hosts_namespace(hosts)
        backend = start_backends(procs, workdir, certs, nofile)
        rows = {}
        for name in args.only:
            rows[name] = direct_row(backend) if name == "direct" else \
                start_proxy(procs, name, workdir, backend["ports"], nofile)
        ctx = {"procs": procs, "ca": certs["ca"], "hosts": hosts, "backend": backend, "rounds": args.rounds,
               "duration": args.duration, "hold": args.hold, "quick": args.quick, "metrics": args.metrics,
               "results_dir": args.results_dir}
        failures, samples = {}, {}
        for name, row in rows.items():
            problems = check_row(ctx, row)
            if problems:
                failures[name] = problems
                log(f"{name}: FAILED correctness: {'; '.join(problems)}")
            samples[name] = {metric: [] for metric, _ in METRICS}
        run_rounds(ctx, list(rows.values()), samples, failures)
        for name in rows:   # a failed measurement marks its row, not only its cell
            for metric, _ in METRICS:
                for s in samples[name][metric]:
                    if s["problems"]:
                        failures.setdefault(f"{name} {metric}", []).extend(s["problems"])
        row_failures = {n: f for n, f in failures.items() if n in rows}
        table = results_table(ctx, args.only, samples, row_failures)
        ratios = ratio_lines(samples, args.only, row_failures)
        notes = log_summary(rows)
        notes += [f"FAILED {n}: {'; '.join(sorted(set(f)))[:500]}" for n, f in failures.items()
                  if n not in rows]
        print("\n".join([table, "", *ratios, "",
                         "tailgate logs one line per connection (default level info); "
                         "HAProxy and nginx stream log none.", *[f"- {n}" for n in notes]]))
        procs.stop_all()
        reload_table = None
        if not args.skip_reload and "tailgate" in rows:
            log("reload latency (bench/reload_latency.py)")
            reload_table = run_reload_latency()
            print("\n" + reload_table)
        machine["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        machine["elapsed_min"] = (time.monotonic() - started) / 60
        report = render_report(ctx, machine, table, ratios, notes, reload_table)
        raw = {"machine": machine, "options": vars(args), "samples": samples, "failures": failures,
               "reload_latency": reload_table,
               "configs": {n: open(r["config"]).read() for n, r in [("backend", backend), *rows.items()]
                           if r.get("config")}}
        base = save_results(ctx, machine, report, raw)
        log(f"wrote {base}.md and {base}.json ({machine['elapsed_min']:.1f} min)")
        return 1 if failures else 0
    finally:
        procs.stop_all()
        signal.signal(signal.SIGTERM, old_term)
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
