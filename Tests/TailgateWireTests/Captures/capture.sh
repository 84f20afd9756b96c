#!/usr/bin/env bash
# Re-creates the ClientHello captures used by TailgateWireTests.
#
# Each capture is the exact byte stream a real client sent first on a fresh TCP
# connection to 127.0.0.1: the TLS records that hold its whole ClientHello, and
# nothing after them. A tiny Python listener (below) saves those bytes and closes
# the connection, so no TLS server or certificate is needed.
#
# Needs: python3, openssl, curl, chromium (Debian: apt-get install -y chromium).
# Usage: ./capture.sh            (writes the *.bin files next to this script)
set -euo pipefail
cd "$(dirname "$0")"

# listen OUTPUT: prints the port on stdout, then saves one ClientHello to OUTPUT.
listen() {
    python3 - "$1" <<'PY'
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
while (end := complete(data)) is None:
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
