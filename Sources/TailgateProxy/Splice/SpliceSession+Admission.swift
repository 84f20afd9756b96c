import CTailgateLinux
import Glibc
import NIOCore
import TailgateWire

extension SpliceSession {
    /// Watches the client socket for its first bytes until client_hello_timeout.
    func startAdmission(loop: SpliceLoop) {
        guard let policy else { return }
        helloDeadline = .now() + policy.clientHelloTimeout
        clientEvents = UInt32(TAILGATE_EPOLLIN)
        guard loop.watch(client, events: clientEvents, for: self) else {
            fail(.error, detail: "client: \(SystemCallError("epoll_ctl"))", loop: loop)
            return
        }
    }

    /// Reads what the client sent and lets the admission state machine decide.
    func readAdmission(loop: SpliceLoop) {
        guard stage == .admitting else { return }
        let scratch = loop.scratch
        let received = recv(client, scratch.baseAddress, scratch.count, 0)
        if received == 0 {
            // Nothing, or only a PROXY header (a load balancer's health check), is a probe: counted, logged quietly.
            let probe = (inbound?.readableBytes ?? 0) == 0
            record.quiet = probe
            fail(.clientClosedEarly, detail: probe ? nil : "eof_before_client_hello", loop: loop)
            return
        }
        if received < 0 {
            if errno == EAGAIN { return }
            fail(.clientClosedEarly, detail: "client: \(SystemCallError("recv"))", loop: loop)
            return
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
        switch action {
        case .needMoreData:
            return
        case .reject(let outcome, let reason):
            fail(outcome, detail: reason, loop: loop)
        case .admit(let hello):
            admitted(hello, loop: loop)
        }
    }

    /// Routes the ClientHello, prepares the greeting (PROXY header and the bytes so far) and connects.
    private func admitted(_ hello: ClientHelloInfo, loop: SpliceLoop) {
        guard let policy, let pool = policy.route(hello, proxyHeader: machine?.proxyHeader, record: record) else {
            fail(.noRoute, detail: nil, loop: loop)
            return
        }
        self.pool = pool
        servers = policy.servers(of: pool, record: record)
        var payload = ByteBuffer()
        payload.reserveCapacity((inbound?.readableBytes ?? 0) + 256)
        if pool.sendProxy != .none {
            ListenerPolicy.writeProxyHeader(
                pool.sendProxy, peer: record.peer, local: localAddress ?? (try? ListeningSocket.localAddress(of: client)),
                inbound: machine?.proxyHeader, authority: record.serverName, into: &payload
            )
        }
        if var bytes = inbound {
            payload.writeBuffer(&bytes)
        }
        greeting = payload.readBytes(length: payload.readableBytes) ?? []
        inbound = nil
        machine = nil
        self.policy = nil
        stage = .connecting
        // Nothing more is read from the client until the greeting is out.
        clientEvents = 0
        loop.rewatch(client, events: 0)
        connectNext(loop: loop)
    }
}
