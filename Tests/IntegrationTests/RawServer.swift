import Foundation

/// A one-connection TCP server run on a thread, scripted by the test: the upstream end of a relay
/// where nginx cannot show what is needed (half-close, a server that never reads).
final class RawServer: @unchecked Sendable {
    let port: Int
    private let listener = try? RawListener()
    private let lock = NSLock()
    private var _received: [UInt8] = []
    private var _sawEOF = false
    private var _finished = false

    enum Behaviour {
        /// Read until EOF, then send `reply` and close.
        case replyAfterEOF(String)
        /// Accept and never read; hold the connection for `seconds`.
        case neverRead(seconds: Double)
        /// Read and discard whatever comes, until EOF.
        case drain
    }

    init(_ behaviour: Behaviour) throws {
        guard let listener else { throw SandboxError.command("cannot listen") }
        port = listener.port
        let thread = Thread { [self] in self.serve(behaviour) }
        thread.start()
    }

    var received: [UInt8] { lock.lock(); defer { lock.unlock() }; return _received }
    var sawEOF: Bool { lock.lock(); defer { lock.unlock() }; return _sawEOF }
    var finished: Bool { lock.lock(); defer { lock.unlock() }; return _finished }

    private func serve(_ behaviour: Behaviour) {
        guard let listener else { return }
        let fd = accept(listener.fd, nil, nil)
        // CLOEXEC: a child spawned meanwhile by another test must not keep this connection open.
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        guard fd >= 0 else { return }
        defer {
            close(fd)
            lock.lock(); _finished = true; lock.unlock()
        }
        switch behaviour {
        case .neverRead(let seconds):
            usleep(UInt32(seconds * 1_000_000))
        case .replyAfterEOF(let reply):
            readUntilEOF(fd)
            var bytes = Array(reply.utf8)
            _ = bytes.withUnsafeMutableBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        case .drain:
            readUntilEOF(fd)
        }
    }

    private func readUntilEOF(_ fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 {
                lock.lock(); _sawEOF = count == 0; lock.unlock()
                return
            }
            lock.lock(); _received.append(contentsOf: chunk[0..<count]); lock.unlock()
        }
    }
}

/// Resident set size of a process in KiB, from /proc.
func residentKiB(_ pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
    return line.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? -1
}
