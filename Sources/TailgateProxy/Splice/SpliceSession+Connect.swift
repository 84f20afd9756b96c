import CTailgateLinux
import Glibc
import NIOCore
import TailgateSystem

extension SpliceSession {
    /// Starts a non-blocking connect to the next server; past the last one the connection is refused.
    func connectNext(loop: SpliceLoop) {
        guard let pool else { return }
        while attempt < servers.count {
            let server = servers[attempt]
            record.server = server
            connectStarted = loop.now
            let descriptor = socket(server.protocol.rawValue, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard descriptor >= 0 else {
                fail(.upstreamUnavailable, detail: "\(server.endpointDescription): \(SystemCallError("socket"))", loop: loop)
                return
            }
            var one: CInt = 1
            _ = setsockopt(descriptor, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
            let result = server.withSockAddr { address, length in
                Glibc.connect(descriptor, address, socklen_t(length))
            }
            if result == 0 || errno == EINPROGRESS {
                upstream = descriptor
                toUpstream.waitingForDestination = true  // until the connect is done
                toClient.sourceReadable = false
                toClient.sourcePeerClosed = false
                guard loop.watch(descriptor, events: SpliceLoop.upstreamEvents, for: self) else {
                    fail(.error, detail: "upstream: \(SystemCallError("epoll_ctl"))", loop: loop)
                    return
                }
                connectDeadline = connectStarted + pool.connectTimeout
                return
            }
            let error = SystemCallError("connect")
            Glibc.close(descriptor)
            noteConnectFailure(server, error.description, loop: loop)
        }
    }

    /// The upstream socket became writable (or failed): the connect is done one way or the other. Writable
    /// without EPOLLERR/EPOLLHUP is a connect that succeeded; only a failure needs SO_ERROR for its reason.
    func finishConnect(_ events: UInt32, loop: SpliceLoop) {
        guard let pool else { return }
        if events & UInt32(TAILGATE_EPOLLERR | TAILGATE_EPOLLHUP) != 0 {
            let error = pendingSocketError(upstream)
            connectFailed(SystemCallError("connect", errno: error != 0 ? error : ECONNREFUSED).description, loop: loop)
            return
        }
        pool.connectHistogram.record(.nanoseconds((loop.now - connectStarted).nanoseconds))
        if let server = record.server {
            pool.connectSucceeded(server)
            pool.usage.acquire(server)
            record.connectedServer = (server, pool.usage)
        }
        lastActivity = loop.now
        stage = .greeting
        toUpstream.waitingForDestination = false
        sendGreeting(loop: loop)
    }

    /// The current attempt failed: close its socket and try the next server.
    func connectFailed(_ reason: String, loop: SpliceLoop) {
        loop.forget(upstream)
        Glibc.close(upstream)
        upstream = -1
        noteConnectFailure(servers[attempt], reason, loop: loop)
        if stage == .connecting { connectNext(loop: loop) }
    }

    private func noteConnectFailure(_ server: SocketAddress, _ reason: String, loop: SpliceLoop) {
        guard let pool else { return }
        pool.connectFailed(server, reason: reason, logger: record.logger)
        attempt += 1
        if attempt >= servers.count {
            fail(.upstreamUnavailable, detail: "\(server.endpointDescription): \(reason)", loop: loop)
        } else {
            record.logger.debug("upstream server failed, trying the next", metadata: [
                "upstream": .string(pool.name), "server": .string(server.endpointDescription), "error": .string(reason),
            ])
        }
    }

    /// Writes the PROXY header and the ClientHello; relaying starts once all of it is out.
    func sendGreeting(loop: SpliceLoop) {
        while greeting.readableBytes > 0 {
            let written = greeting.withUnsafeReadableBytes { bytes in write(upstream, bytes.baseAddress, bytes.count) }
            if written > 0 {
                greeting.moveReaderIndex(forwardBy: written)
            } else if errno == EAGAIN {
                toUpstream.waitingForDestination = true  // until the next EPOLLOUT edge
                return
            } else {
                fail(.error, detail: "upstream: \(SystemCallError("write"))", loop: loop)
                return
            }
        }
        greeting = ByteBuffer()
        stage = .relaying
        relay(hangUp: nil, loop: loop)
    }
}
