import Foundation
import TailgateTestSupport

/// A real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET.
final class NotifySocket: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var _messages: [(time: Date, text: String)] = []
    private var open = true

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw SandboxError.command("bind \(path): errno \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [self] in self.receiveLoop() }.start()
    }

    private func receiveLoop() {
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while lock.withLock({ open }) {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                lock.withLock { _messages.append((Date(), text)) }
            }
        }
        close(fd)
    }

    var messages: [(time: Date, text: String)] { lock.withLock { _messages } }

    /// The first message at or after index `from` whose lines include all of `lines`.
    /// The first message from index `from` with all of `lines` (a line ending in "=" matches by prefix) that `accept` takes.
    func waitFor(
        _ lines: [String], from: Int = 0, timeout: Double = 10, accept: (String) -> Bool = { _ in true }
    ) -> (index: Int, text: String)? {
        var found: (Int, String)?
        _ = Poll.until(timeout: timeout) {
            let all = messages
            guard from < all.count else { return false }
            for index in from..<all.count {
                let text = all[index].text
                let have = Set(text.split(separator: "\n").map(String.init))
                if lines.allSatisfy({ line in have.contains(line) || (line.hasSuffix("=") && have.contains { $0.hasPrefix(line) }) }), accept(text) {
                    found = (index, text)
                    return true
                }
            }
            return false
        }
        return found
    }

    func shutdown() {
        lock.withLock { open = false }
        unlink(path)
    }
}
