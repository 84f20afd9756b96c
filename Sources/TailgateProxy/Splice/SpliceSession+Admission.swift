import CTailgateLinux
import Glibc
import NIOCore
import TailgateSystem
import TailgateWire

extension SpliceSession {
    /// Watches the client socket for its first bytes until client_hello_timeout. Reading comes with the
    /// socket's first event, not right after accept: the connection is accepted on the client's last
    /// handshake segment and its ClientHello is a separate one, so a read at once mostly said EAGAIN (85 %
    /// of new connections in the benchmark). Bytes that did arrive first are not missed: registering a
    /// socket that is already readable queues its event, edge-triggered or not.
    func startAdmission(loop: SpliceLoop) {
        guard let policy else { return }
        helloDeadline = loop.now + policy.clientHelloTimeout
        guard loop.watch(client, events: SpliceLoop.clientEvents, for: self) else {
            fail(.error, detail: "client: \(SystemCallError("epoll_ctl"))", loop: loop)
            return
        }
    }

    /// Reads what the client sent and lets the admission state machine decide.
    func readAdmission(loop: SpliceLoop) {
        while stage == .admitting, toUpstream.sourceReadable {
            let scratch = loop.scratch
            let received = recv(client, scratch.baseAddress, scratch.count, 0)
            if received == 0 {
                clientEndedBeforeHello(loop: loop)
                return
            }
            if received < 0 {
                let error = SystemCallError("recv")
                if error.errno == EAGAIN {
                    toUpstream.sourceReadable = false
                    return
                }
                // Leaving with a reset instead of a FIN (SO_LINGER 0, as TCP health checks do) before
                // anything but a PROXY header is a probe all the same.
                record.quiet = error.errno == ECONNRESET && (inbound?.readableBytes ?? 0) == 0
                fail(.clientClosedEarly, detail: error.described(by: "client"), loop: loop)
                return
            }
            // A short read empties the receive queue (edge-triggered: the next bytes bring a new event);
            // if the client's FIN had been reported, these were its last bytes.
            if received < scratch.count {
                toUpstream.sourceReadable = false
                if toUpstream.sourcePeerClosed { toUpstream.sourceEnded = true }
            }
            record.bytesFromClient += received
            let bytes = UnsafeRawBufferPointer(rebasing: scratch[0..<received])
            if inbound == nil {
                inbound = ByteBuffer(bytes: bytes)
            } else {
                inbound!.writeBytes(bytes)  // set just above when nil
            }
            guard var buffer = inbound, var decision = machine else { return }
            let action = decision.process(&buffer)
            inbound = buffer
            machine = decision
            record.adoptSource(of: decision.proxyHeader)
            switch action {
            case .needMoreData:
                if toUpstream.sourceEnded {
                    clientEndedBeforeHello(loop: loop)
                    return
                }
            case .reject(let outcome, let reason):
                fail(outcome, detail: reason, loop: loop)
                return
            case .admit(let hello):
                admitted(hello, loop: loop)
                return
            }
        }
    }

    /// Nothing, or only a PROXY header (a load balancer's health check), is a probe: counted, logged quietly.
    private func clientEndedBeforeHello(loop: SpliceLoop) {
        let probe = (inbound?.readableBytes ?? 0) == 0
        record.quiet = probe
        fail(.clientClosedEarly, detail: probe ? nil : "eof_before_client_hello", loop: loop)
    }

    /// Routes the ClientHello, prepares the greeting (PROXY header and the bytes so far) and connects.
    private func admitted(_ hello: ClientHelloInfo, loop: SpliceLoop) {
        guard let policy, let pool = policy.route(hello, record: record) else {
            fail(.noRoute, detail: nil, loop: loop)
            return
        }
        self.pool = pool
        servers = policy.servers(of: pool, record: record)
        if pool.sendProxy != .none {
            var payload = ByteBufferAllocator().buffer(capacity: (inbound?.readableBytes ?? 0) + 256)
            ListenerPolicy.writeProxyHeader(
                pool.sendProxy, peer: record.peer, local: localAddress ?? (try? ListeningSocket.localAddress(of: client)),
                inbound: machine?.proxyHeader, authority: record.serverName, into: &payload
            )
            if var bytes = inbound {
                payload.writeBuffer(&bytes)
            }
            greeting = payload
        } else {
            greeting = inbound ?? ByteBuffer()
        }
        inbound = nil
        machine = nil
        self.policy = nil
        // Nothing more is read from the client until the greeting is out (what arrives meanwhile is noted).
        stage = .connecting
        connectNext(loop: loop)
    }
}
