import Foundation
import TailgateConfig
import TailgateTestSupport
import Testing

/// Many short conversations at once, each in several exchanges, the way TLS clients use a proxy: every one
/// must arrive whole. Connections open and close so fast that a descriptor is closed and handed to the next
/// connection within one turn of the relay's event loop; an event of the old connection must never reach the
/// new one (the splice relay once let a stale "peer closed" end a new connection's input after its next read,
/// which about 1 in 1,500 benchmark connections hit). The race is timing-bound: with the guard taken out,
/// this test failed in 2 of 3 runs at half its size (a few of 2,400 conversations broke).
@Suite(.serialized)
struct ConnectionChurnTests {
    @Test(arguments: RelayMode.allCases)
    func manyShortConversationsAtOnceAllArriveWhole(relay: RelayMode) throws {
        let sandbox = try Sandbox("churn-\(relay)")
        defer { sandbox.tearDown() }
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let server = try ConversationServer(threads: 24) { $0.converse(helloLength: hello.count) }
        defer { server.stop() }
        let (tailgate, port) = try Self.start(relay, sandbox, to: server)
        let clients = 16
        let rounds = 300
        let problems = NSLock()
        nonisolated(unsafe) var broken: [String] = []
        DispatchQueue.concurrentPerform(iterations: clients) { client in
            for round in 0..<rounds {
                if let problem = Self.converse(port: port, hello: hello, tag: "\(client)-\(round)") {
                    problems.lock(); broken.append(problem); problems.unlock()
                }
            }
        }
        #expect(broken.isEmpty, "\(broken.count) of \(clients * rounds) conversations broke, e.g. \(broken.prefix(3))")
        #expect(server.completed == clients * rounds)
        #expect(Poll.until(timeout: 10) { tailgate.connectionLines.count == clients * rounds })
        let lines = tailgate.connectionLines
        #expect(lines.allSatisfy { $0.contains("outcome=closed") }, "\(lines.filter { !$0.contains("outcome=closed") }.prefix(3))")
    }

    /// A client that sends its ClientHello, more bytes and its FIN at once: however the three arrive (before
    /// the accept, with the first read, in one event after it), the FIN reaches the server, whose answer
    /// then reaches the client. 300 times, 8 at a time.
    @Test(arguments: RelayMode.allCases)
    func clientsThatSendEverythingAndHalfCloseAtOnceAllGetTheirAnswer(relay: RelayMode) throws {
        let sandbox = try Sandbox("churn-half-close-\(relay)")
        defer { sandbox.tearDown() }
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let server = try ConversationServer(threads: 8) { $0.answerAfterEOF() }
        defer { server.stop() }
        let (_, port) = try Self.start(relay, sandbox, to: server)
        let problems = NSLock()
        nonisolated(unsafe) var broken: [String] = []
        DispatchQueue.concurrentPerform(iterations: 8) { client in
            for round in 0..<38 {
                guard let connection = try? RawClient(host: "127.0.0.1", port: port) else { continue }
                connection.send(hello + Array("and the rest".utf8))
                connection.shutdownWrite()
                let answer = String(decoding: connection.receive(atLeast: Int.max, timeout: 10), as: UTF8.self)
                connection.close()
                if answer != "got \(hello.count + 12) bytes" {
                    problems.lock(); broken.append("\(client)-\(round): \(answer.debugDescription)"); problems.unlock()
                }
            }
        }
        #expect(broken.isEmpty, "\(broken.count) of 304 half-closing clients got no answer, e.g. \(broken.prefix(3))")
    }

    /// When another relay thread starts to accept, thread 0 hands it every second relaying connection: those
    /// must go on exchanging as if nothing happened. `TAILGATE_TEST_SPREAD=grow` makes any load bring the next
    /// thread in (the real threshold needs a busy machine).
    @Test func connectionsHandedToAnotherRelayThreadGoOn() throws {
        let sandbox = try Sandbox("handover")
        defer { sandbox.tearDown() }
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let clients = 20
        let server = try ConversationServer(threads: clients) { $0.pingPong(helloLength: hello.count) }
        defer { server.stop() }
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [listeners.handover]
            bind = ["127.0.0.1:\(port)"]
            default = "talk"
            [upstreams.talk]
            servers = ["127.0.0.1:\(server.port)"]
            """, in: sandbox, environment: ["TAILGATE_TEST_SPREAD": "grow"]).process
        let connections = try PingPong.open(clients, port: port, hello: hello)
        defer { connections.forEach { $0.close() } }
        // Exchanges on every connection until the second thread has joined, and a while after.
        var broken: [String] = []
        var round = 0
        var joinedAt: Int?
        while broken.isEmpty, round < 2_000, joinedAt.map({ round < $0 + 50 }) ?? true {
            broken += PingPong.exchange(connections, round: round)
            if joinedAt == nil, tailgate.output.contains("another relay thread accepts") { joinedAt = round }
            round += 1
        }
        #expect(joinedAt != nil, "no relay thread joined: \(tailgate.output.suffix(1_000))")
        // Every second relaying connection of thread 0 (10 if all 20 were relaying on it by then).
        let handedOver = tailgate.output.components(separatedBy: "connections_handed_over=").dropFirst().first
            .map { Int($0.prefix { $0.isNumber }) ?? 0 } ?? 0
        #expect(handedOver >= 1, "\(tailgate.output.suffix(1_000))")
        #expect(broken.isEmpty, "\(broken.count) exchanges broke, e.g. \(broken.prefix(3))")
        for client in connections { _ = client.send("bye\n") }
        #expect(Poll.until(timeout: 10) { server.completed == clients }, "\(server.completed) of \(clients) conversations ended cleanly")
    }

    /// A tailgate whose one listener relays to `server`, every relay thread accepting (by default a light load
    /// stays on one thread; the stale-event bug needs connections coming and going on several at once).
    private static func start(_ relay: RelayMode, _ sandbox: Sandbox, to server: ConversationServer) throws -> (TailgateInstance, Int) {
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [global]
            relay = "\(relay.rawValue)"
            accept_spread = "all"

            [listeners.churn]
            bind = ["127.0.0.1:\(port)"]
            default = "talk"
            [upstreams.talk]
            servers = ["127.0.0.1:\(server.port)"]
            """, in: sandbox)
        return (tailgate, port)
    }

    /// ClientHello → "ack"; "one" → "two?"; "request TAG" → "response TAG" and the server's close; then the
    /// client sends a last line into the closed connection (as a TLS client's close_notify does) and closes.
    private static func converse(port: Int, hello: [UInt8], tag: String) -> String? {
        guard let client = try? RawClient(host: "127.0.0.1", port: port) else { return "\(tag): connect failed" }
        defer { client.close() }
        client.send(hello)
        let ack = client.receive(atLeast: 4, timeout: 10)
        guard ack == Array("ack\n".utf8) else { return "\(tag): after the hello got \(String(decoding: ack, as: UTF8.self).debugDescription)" }
        client.send("one\n")
        let two = client.receive(atLeast: 5, timeout: 10)
        guard two == Array("two?\n".utf8) else { return "\(tag): after one got \(String(decoding: two, as: UTF8.self).debugDescription)" }
        client.send("request \(tag)\n")
        let response = String(decoding: client.receive(atLeast: Int.max, timeout: 10), as: UTF8.self)
        guard response == "response \(tag)\n" else { return "\(tag): after the request got \(response.debugDescription)" }
        client.send("bye\n")
        return nil
    }
}

/// The upstream of the churn tests: `threads` threads accept on one socket and hold one scripted
/// conversation each at a time (blocking reads with a timeout).
final class ConversationServer: @unchecked Sendable {
    /// One accepted connection, for a script to talk over.
    struct Connection {
        let fd: Int32
    }

    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var _completed = 0
    private var running: Int

    var completed: Int { lock.lock(); defer { lock.unlock() }; return _completed }

    init(threads: Int, script: @escaping @Sendable (Connection) -> Bool) throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = listener
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 1_024) == 0 else { throw SandboxError.command("cannot listen") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        running = threads
        for _ in 0..<threads {
            Thread { [self] in
                while true {
                    let connection = accept(fd, nil, nil)
                    guard connection >= 0 else {  // the listener was shut down
                        self.lock.lock(); self.running -= 1; let last = self.running == 0; self.lock.unlock()
                        if last { close(fd) }
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
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
    }
}

/// The client side of `ConversationServer.Connection.pingPong`.
enum PingPong {
    /// `count` connections through `port`, each past its ClientHello and the server's ack.
    static func open(_ count: Int, port: Int, hello: [UInt8]) throws -> [RawClient] {
        try (0..<count).map { _ in
            let client = try RawClient(host: "127.0.0.1", port: port)
            #expect(client.send(hello))
            #expect(client.receive(atLeast: 4, timeout: 10) == Array("ack\n".utf8))
            return client
        }
    }

    /// One ping and its pong on every connection; the exchanges that broke, as "client-round: answer".
    static func exchange(_ clients: [RawClient], round: Int) -> [String] {
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
    func converse(helloLength: Int) -> Bool {
        guard read(count: helloLength) != nil, write("ack\n"),
              readLine() == "one", write("two?\n"),
              let request = readLine(), request.hasPrefix("request ")
        else { return false }
        return write("response " + request.dropFirst("request ".count) + "\n")
    }

    /// The hand-over conversation: the ClientHello, then "ping X" → "pong X" until "bye".
    func pingPong(helloLength: Int) -> Bool {
        guard read(count: helloLength) != nil, write("ack\n") else { return false }
        while let line = readLine() {
            if line == "bye" { return true }
            guard line.hasPrefix("ping "), write("pong " + line.dropFirst("ping ".count) + "\n") else { return false }
        }
        return false
    }

    /// Reads to EOF, then says how many bytes came.
    func answerAfterEOF() -> Bool {
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
