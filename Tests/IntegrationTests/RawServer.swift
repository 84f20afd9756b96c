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
        /// Read until `count` bytes arrived, send `reply`, wait `pause` seconds, then reset the connection.
        case replyThenReset(after: Int, reply: String, pause: Double)
        /// Read until `count` bytes arrived, then send as fast as the peer takes until it has gone.
        case streamUntilGone(after: Int)
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
        case .replyThenReset(let count, let reply, let pause):
            guard readAtLeast(count, fd) else { return }
            var bytes = Array(reply.utf8)
            _ = bytes.withUnsafeMutableBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            usleep(UInt32(pause * 1_000_000))
            var option = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        case .streamUntilGone(let count):
            guard readAtLeast(count, fd) else { return }
            let chunk = [UInt8](repeating: 0x78, count: 65_536)
            while chunk.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) > 0 {}
        }
    }

    /// Reads until `count` bytes arrived in all; false if the peer closed first.
    private func readAtLeast(_ count: Int, _ fd: Int32) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while received.count < count {
            let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got <= 0 { return false }
            lock.lock(); _received.append(contentsOf: chunk[0..<got]); lock.unlock()
        }
        return true
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

/// CPU time (user + system, all threads) a process has used, in seconds, from /proc.
func cpuSeconds(_ pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let end = stat.lastIndex(of: ")") else { return -1 }
    // After "pid (comm)": state is field 3; utime and stime are fields 14 and 15.
    let fields = stat[stat.index(after: end)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return -1 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The file `name` (e.g. "comm", "status") of each of a process's threads, from /proc/PID/task.
func threadFiles(_ pid: Int32, _ name: String) -> [String] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/\(name)", encoding: .utf8) }
}

/// The open descriptors of a process by kind, from /proc/PID/fd.
struct DescriptorCount: CustomStringConvertible {
    var sockets = 0
    var pipes = 0
    var other = 0
    var total: Int { sockets + pipes + other }
    var description: String { "\(total) (sockets \(sockets), pipes \(pipes), other \(other))" }
}

func openDescriptors(_ pid: Int32) -> DescriptorCount {
    var count = DescriptorCount()
    let directory = "/proc/\(pid)/fd"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(name)") else { continue }
        if target.hasPrefix("socket:") { count.sockets += 1 } else if target.hasPrefix("pipe:") { count.pipes += 1 } else { count.other += 1 }
    }
    return count
}
