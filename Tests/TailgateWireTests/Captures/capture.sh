#!/usr/bin/env bash
# Re-creates the captures used by TailgateWireTests.
#
# ClientHellos: each is the exact byte stream a real client sent first on a fresh
# TCP connection to 127.0.0.1: the TLS records that hold its whole ClientHello, and
# nothing after them. A tiny Python listener (below) saves those bytes and closes
# the connection, so no TLS server or certificate is needed.
#
# PROXY headers: HAProxy terminates TLS from `openssl s_client` and connects to the
# listener with send-proxy (v1) or send-proxy-v2 (v2, with the authority TLV holding
# the client's SNI and a CRC32c TLV); the listener saves the header alone.
#
# Needs: python3, openssl, curl, chromium, haproxy (Debian: apt-get install -y chromium haproxy).
# Usage: ./capture.sh [clienthello|proxy]   (writes the *.bin files next to this script;
#        both parts without an argument). Sizes of new captures may differ: the tests
#        list the expected server names, ALPN and sizes in Capture.swift.
set -euo pipefail
cd "$(dirname "$0")"
part="${1:-all}"

# listen OUTPUT [proxy]: prints the port on stdout, then saves one ClientHello (or
# with "proxy", one PROXY protocol header) to OUTPUT.
listen() {
    python3 - "$1" "${2:-}" <<'PY'
import socket, sys
out = sys.argv[1]
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(1)
server.settimeout(60)
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
conn.settimeout(30)
data = b""
def complete_proxy(data):
    """Returns the length of the PROXY header at the start of data, or None."""
    if data.startswith(b"PROXY"):
        return data.index(b"\r\n") + 2 if b"\r\n" in data else None
    if len(data) >= 16:
        length = 16 + int.from_bytes(data[14:16], "big")
        return length if len(data) >= length else None
    return None
def complete(data):
    """Returns the length of the records holding the whole first handshake message, or None."""
    handshake, offset = b"", 0
    while len(data) >= offset + 5:
        length = int.from_bytes(data[offset + 3:offset + 5], "big")
        if data[offset] != 0x16 or len(data) < offset + 5 + length:
            return None
        handshake += data[offset + 5:offset + 5 + length]
        offset += 5 + length
        if len(handshake) >= 4 and len(handshake) >= 4 + int.from_bytes(handshake[1:4], "big"):
            return offset
    return None
while (end := (complete_proxy if sys.argv[2] == "proxy" else complete)(data)) is None:
    chunk = conn.recv(65536)
    if not chunk:
        sys.exit("connection closed before the ClientHello was complete")
    data += chunk
conn.close()
with open(out, "wb") as f:
    f.write(data[:end])
PY
}

# capture OUTPUT COMMAND...: runs COMMAND with {PORT} replaced while listen saves the ClientHello.
capture() {
    local out="$1"; shift
    local fifo; fifo="$(mktemp -u)"; mkfifo "$fifo"
    listen "$out" >"$fifo" &
    local listener=$!
    local port; read -r port <"$fifo"; rm -f "$fifo"
    local args=("${@//\{PORT\}/$port}")
    "${args[@]}" >/dev/null 2>&1 &
    local client=$!
    wait "$listener"
    kill "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    echo "$out: $(stat -c %s "$out") bytes"
}

if [ "$part" != proxy ]; then
capture openssl-sni-alpn.bin \
    timeout 20 openssl s_client -connect '127.0.0.1:{PORT}' -servername tailgate.example.test -alpn h2,http/1.1
capture openssl-no-sni.bin \
    timeout 20 openssl s_client -connect '127.0.0.1:{PORT}' -noservername
capture curl.bin \
    timeout 20 curl -sk --resolve 'www.example.test:{PORT}:127.0.0.1' 'https://www.example.test:{PORT}/'

profile="$(mktemp -d)"
capture chromium-mlkem.bin \
    timeout 40 chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --user-data-dir="$profile" --host-resolver-rules='MAP pq.example.test 127.0.0.1' \
    'https://pq.example.test:{PORT}/'
rm -rf "$profile"

# The Chromium ClientHello re-framed into 100-byte handshake fragments, one per
# TLS record (RFC 8446 section 5.1 allows a handshake message to span records).
python3 - chromium-mlkem.bin chromium-mlkem-fragmented.bin <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
handshake, offset = b"", 0
while offset < len(data):
    length = int.from_bytes(data[offset + 3:offset + 5], "big")
    handshake += data[offset + 5:offset + 5 + length]
    offset += 5 + length
version = data[1:3]
out = b"".join(
    b"\x16" + version + len(handshake[i:i + 100]).to_bytes(2, "big") + handshake[i:i + 100]
    for i in range(0, len(handshake), 100)
)
open(sys.argv[2], "wb").write(out)
PY
echo "chromium-mlkem-fragmented.bin: $(stat -c %s chromium-mlkem-fragmented.bin) bytes"
fi
[ "$part" = clienthello ] && exit 0

# capture_proxy OUTPUT FAMILY SERVER_OPTIONS: HAProxy listening on 127.0.0.1 or ::1
# (FAMILY 4 or 6) relays an openssl s_client connection to the listener with the
# PROXY header that SERVER_OPTIONS ask for.
work="$(mktemp -d)"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=tailgate.example.test \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" >"$work/both.pem"
capture_proxy() {
    local out="$1" family="$2" options="$3"
    local fifo; fifo="$(mktemp -u)"; mkfifo "$fifo"
    listen "$out" proxy >"$fifo" &
    local listener=$!
    local port; read -r port <"$fifo"; rm -f "$fifo"
    local front; front="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    local address="127.0.0.1"; [ "$family" = 6 ] && address="::1"
    cat >"$work/haproxy.cfg" <<CFG
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend tls
    bind ${address}:${front} ssl crt $work/both.pem
    default_backend listener
backend listener
    server listener 127.0.0.1:${port} ${options}
CFG
    haproxy -db -f "$work/haproxy.cfg" >/dev/null 2>&1 &
    local proxy=$!
    local connect="127.0.0.1:${front}"; [ "$family" = 6 ] && connect="[::1]:${front}"
    for _ in $(seq 50); do
        timeout 5 openssl s_client -connect "$connect" -servername tailgate.example.test </dev/null >/dev/null 2>&1 && break
        sleep 0.2
    done
    wait "$listener"
    kill "$proxy"; wait "$proxy" 2>/dev/null || true
    echo "$out: $(stat -c %s "$out") bytes"
}
capture_proxy haproxy-v1-tcp4.bin 4 send-proxy
capture_proxy haproxy-v1-tcp6.bin 6 send-proxy
capture_proxy haproxy-v2-tcp4-authority-crc32c.bin 4 "send-proxy-v2 proxy-v2-options authority,crc32c"
capture_proxy haproxy-v2-tcp6-authority-crc32c.bin 6 "send-proxy-v2 proxy-v2-options authority,crc32c"
rm -rf "$work"
