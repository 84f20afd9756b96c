import Foundation

/// The upstream of the churn tests: `threads` threads accept on one socket and hold one scripted
/// conversation each at a time (blocking reads with a timeout).
public final class ConversationServer: @unchecked Sendable {
    /// One accepted connection, for a script to talk over.
    public struct Connection {
        public let fd: Int32
    }

    public let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var _completed = 0
    private var running: Int
    private var listenerClosed = false

    public var completed: Int { lock.lock(); defer { lock.unlock() }; return _completed }

    public init(threads: Int, script: @escaping @Sendable (Connection) -> Bool) throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = listener
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 1_024) == 0 else { throw TestFailure("conversation server: cannot listen") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        running = threads
        for _ in 0..<threads {
            Thread { [self] in
                while true {
                    let connection = accept(fd, nil, nil)
                    guard connection >= 0 else {  // the listener was shut down
                        self.lock.lock()
                        self.running -= 1
                        if self.running == 0 {
                            // Under the lock: `stop` must not shut down a number that is closed and maybe reused.
                            close(fd)
                            self.listenerClosed = true
                        }
                        self.lock.unlock()
                        return
                    }
                    _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                    var timeout = timeval(tv_sec: 10, tv_usec: 0)
                    setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    if script(Connection(fd: connection)) {
                        self.lock.lock(); self._completed += 1; self.lock.unlock()
                    }
                    close(connection)
                }
            }.start()
        }
    }

    /// Ends the accepting threads: their `accept` fails once the listener is shut down, and the last one to
    /// leave closes it (closing it here could hand its number to another socket while a thread still accepts).
    public func stop() {
        lock.lock()
        if !listenerClosed { shutdown(listener, Int32(SHUT_RDWR)) }
        lock.unlock()
    }
}

/// The client side of `ConversationServer.Connection.pingPong`.
public enum PingPong {
    /// `count` connections through `port`, each past its ClientHello and the server's ack.
    public static func open(_ count: Int, port: Int, hello: [UInt8]) throws -> [RawClient] {
        try (0..<count).map { index in
            let client = try RawClient(host: "127.0.0.1", port: port)
            guard client.send(hello), client.receive(atLeast: 4, timeout: 10) == Array("ack\n".utf8) else {
                throw TestFailure("ping-pong connection \(index): no ack after the ClientHello")
            }
            return client
        }
    }

    /// One connection through `port`: the ClientHello, the ack, one ping and its pong, "bye". The pong, or nil
    /// when the connection did not get that far.
    public static func exchangeOnce(port: Int, hello: [UInt8]) -> String? {
        guard let client = try? RawClient(host: "127.0.0.1", port: port) else { return nil }
        defer { client.close() }
        guard client.send(hello), client.receive(atLeast: 4, timeout: 5) == Array("ack\n".utf8) else { return nil }
        _ = client.send("ping once\n")
        let answer = String(decoding: client.receive(atLeast: "pong once\n".utf8.count, timeout: 5), as: UTF8.self)
        _ = client.send("bye\n")
        return answer == "pong once\n" ? answer : nil
    }

    /// One ping and its pong on every connection; the exchanges that broke, as "client-round: answer".
    public static func exchange(_ clients: [RawClient], round: Int) -> [String] {
        clients.enumerated().compactMap { index, client in
            let tag = "\(index)-\(round)"
            _ = client.send("ping \(tag)\n")
            let answer = String(decoding: client.receive(atLeast: "pong \(tag)\n".utf8.count, timeout: 10), as: UTF8.self)
            return answer == "pong \(tag)\n" ? nil : "\(tag): \(answer.debugDescription)"
        }
    }
}

extension ConversationServer.Connection {
    /// The churn conversation; false when the client's side ended early (EOF, reset or a 10 s silence).
    public func converse(helloLength: Int) -> Bool {
        guard read(count: helloLength) != nil, write("ack\n"),
              readLine() == "one", write("two?\n"),
              let request = readLine(), request.hasPrefix("request ")
        else { return false }
        return write("response " + request.dropFirst("request ".count) + "\n")
    }

    /// The hand-over conversation: the ClientHello, then "ping X" → "pong X" until "bye".
    public func pingPong(helloLength: Int) -> Bool {
        guard read(count: helloLength) != nil, write("ack\n") else { return false }
        while let line = readLine() {
            if line == "bye" { return true }
            guard line.hasPrefix("ping "), write("pong " + line.dropFirst("ping ".count) + "\n") else { return false }
        }
        return false
    }

    /// Reads to EOF, then says how many bytes came.
    public func answerAfterEOF() -> Bool {
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got < 0 { return false }
            if got == 0 { break }
            total += got
        }
        return write("got \(total) bytes")
    }

    private func read(count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let got = bytes[offset...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got <= 0 { return nil }
            offset += got
        }
        return bytes
    }

    /// Reads up to a newline (the client sends one line and waits, so nothing past it is read).
    private func readLine() -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            guard recv(fd, &byte, 1, 0) == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
    }

    private func write(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }
}
