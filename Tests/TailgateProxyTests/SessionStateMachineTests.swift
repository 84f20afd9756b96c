import Foundation
import Glibc
import NIOCore
import TailgateSystem
import TailgateWire
import Testing
@testable import TailgateProxy

/// The session's life without sockets: every event in every state, and the orders of events that once
/// crashed the relay or cut a stream short silently.
@Suite struct SessionStateMachineTests {
    typealias Machine = SessionStateMachine

    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static let servers = [try! SocketAddress(ipAddress: "127.0.0.1", port: 8001), try! SocketAddress(ipAddress: "127.0.0.1", port: 8002)]
    static let route = Machine.Route(servers: servers, connectTimeout: .seconds(3), idleTimeout: .seconds(60))
    static let hello: [UInt8] = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        return Array((try? Data(contentsOf: root.appendingPathComponent("TailgateWireTests/Captures/openssl-sni-alpn.bin"))) ?? Data())
    }()

    /// A short name for an action, to compare with.
    static func name(_ action: Machine.Action) -> String {
        switch action {
        case .wait: return "wait"
        case .receiveFromClient: return "receive"
        case .route(let hello, let received): return "route \(hello.serverName ?? "-") \(received.readableBytes)"
        case .routeRequest(let head, let received): return "routeRequest \(head.host ?? "-") \(received.readableBytes)"
        case .connect(let server): return "connect \(server.port ?? 0)"
        case .abandonAttempt(let server, let reason): return "abandon \(server.port ?? 0): \(reason)"
        case .fetchError(let side): return "fetchError \(side)"
        case .connected(let server): return "connected \(server.port ?? 0)"
        case .sendGreeting(let bytes): return "send \(bytes.readableBytes)"
        case .pump: return "pump"
        case .watchClientOutput: return "watchOutput"
        case .resumeLater: return "resumeLater"
        case .close(let closing): return "close \(closing.outcome.rawValue)" + (closing.detail.map { ": \($0)" } ?? "")
        }
    }

    static func receive(_ machine: inout Machine, _ bytes: [UInt8], capacity: Int = 16_384) -> Machine.Action {
        bytes.withUnsafeBytes { machine.received($0, capacity: capacity) }
    }

    // MARK: - Machines in each state

    static func admitting(proxyHeader: Bool = false) -> Machine {
        Machine(expectProxyHeader: proxyHeader, helloDeadline: start + .seconds(10))
    }

    static func connecting() -> Machine {
        var machine = admitting()
        #expect(name(machine.clientEvent(.input, now: start)) == "receive")
        #expect(name(receive(&machine, hello)) == "route tailgate.example.test \(hello.count)")
        #expect(name(machine.routed(route, greeting: ByteBuffer(bytes: hello), now: start)) == "connect 8001")
        #expect(name(machine.connectStarted(now: start)) == "wait")
        return machine
    }

    static func greeting() -> Machine {
        var machine = connecting()
        #expect(name(machine.upstreamEvent(.output, now: start)) == "connected 8001")
        return machine
    }

    static func relaying() -> Machine {
        var machine = greeting()
        #expect(name(machine.greetingReady()) == "send \(hello.count)")
        #expect(name(machine.greetingSent(hello.count, now: start)) == "pump")
        #expect(machine.isRelaying)
        return machine
    }

    static func closed() -> Machine {
        var machine = admitting()
        _ = machine.fail(.error, detail: "test")
        return machine
    }

    static let states: [(String, @Sendable () -> Machine)] = [
        ("admitting", { admitting() }), ("connecting", { connecting() }), ("greeting", { greeting() }),
        ("relaying", { relaying() }), ("closed", { closed() }),
    ]

    // MARK: - Every event in every state

    /// What each event does in each state (a pump with nothing to move, for the relaying state).
    @Test(arguments: 0..<5)
    func everyEventInEveryStateHasAnAnswer(state index: Int) {
        let (state, make) = Self.states[index]
        let now = Self.start + .seconds(1)
        let expected: [String: [String]] = [
            "admitting": ["receive", "receive", "wait", "wait", "wait", "close drain_timeout",
                          "close client_hello_timeout: waiting_for_client_hello"],
            "connecting": ["wait", "fetchError client", "connected 8001", "fetchError upstream", "wait", "close drain_timeout",
                           "abandon 8001: connect timed out after 3000 ms"],
            "greeting": ["wait", "fetchError client", "send \(Self.hello.count)", "send \(Self.hello.count)", "wait", "close drain_timeout",
                         "close idle_timeout"],
            "relaying": ["pump", "pump", "pump", "pump", "pump", "close drain_timeout", "close idle_timeout"],
            "closed": ["wait", "wait", "wait", "wait", "wait", "wait", "wait"],
        ]
        let events: [(inout Machine) -> Machine.Action] = [
            { $0.clientEvent(.input, now: now) },
            { $0.clientEvent([.input, .hangUp], now: now) },
            { $0.upstreamEvent(.output, now: now) },
            { $0.upstreamEvent([.output, .error], now: now) },
            { $0.resumed() },
            { $0.drainDeadline() },
            { $0.timer(now: Self.start + .seconds(3_600)) },
        ]
        for (number, event) in events.enumerated() {
            var machine = make()
            #expect(Self.name(event(&machine)) == expected[state]?[number], "\(state), event \(number)")
        }
        // Before any deadline, the timer changes nothing.
        var machine = make()
        #expect(Self.name(machine.timer(now: Self.start)) == "wait", "\(state)")
    }

    // MARK: - Admission

    /// A plain TCP listener routes as it accepts (the server may speak first, as SSH's does), and with an
    /// empty greeting goes straight to relaying once connected; a TLS listener waits for its ClientHello.
    @Test func aPlainTCPConnectionIsRoutedAsAcceptedAndRelaysOnceConnected() {
        var machine = Machine(expectProxyHeader: false, plainTCP: true, helloDeadline: Self.start + .seconds(10))
        #expect(Self.name(machine.accepted()) == "route - 0")
        #expect(Self.name(machine.routed(Self.route, greeting: ByteBuffer(), now: Self.start)) == "connect 8001")
        #expect(Self.name(machine.connectStarted(now: Self.start)) == "wait")
        #expect(Self.name(machine.upstreamEvent(.output, now: Self.start)) == "connected 8001")
        #expect(Self.name(machine.greetingReady()) == "send 0")
        #expect(Self.name(machine.greetingSent(0, now: Self.start)) == "pump")
        #expect(machine.isRelaying)

        var tls = Self.admitting()
        #expect(Self.name(tls.accepted()) == "wait")
        var behindProxy = Machine(expectProxyHeader: true, plainTCP: true, helloDeadline: Self.start + .seconds(10))
        #expect(Self.name(behindProxy.accepted()) == "wait")
        #expect(Self.name(behindProxy.clientEvent(.input, now: Self.start)) == "receive")
        #expect(Self.name(Self.receive(&behindProxy, Array("PROXY TCP4 198.51.100.7 203.0.113.1 40000 22\r\n".utf8))) == "route - 0")
    }

    @Test func aClientHelloDribbledInIsRoutedOnceCompleteWithEveryByteForwarded() {
        var machine = Self.admitting()
        #expect(Self.name(machine.clientEvent(.input, now: Self.start)) == "receive")
        for byte in Self.hello.dropLast() {
            // A short read drains the queue: wait for the next event.
            #expect(Self.name(Self.receive(&machine, [byte])) == "wait")
            #expect(Self.name(machine.clientEvent(.input, now: Self.start)) == "receive")
        }
        #expect(Self.name(Self.receive(&machine, [Self.hello.last ?? 0])) == "route tailgate.example.test \(Self.hello.count)")
    }

    @Test func aClientThatLeavesEarlyIsAProbeOnlyWhenItSentNothing() {
        var silent = Self.admitting()
        _ = silent.clientEvent([.input, .peerClosed], now: Self.start)
        guard case .close(let closing) = silent.clientEnded() else { Issue.record("not closed"); return }
        #expect(closing.outcome == .clientClosedEarly && closing.quiet && closing.detail == nil)

        var partial = Self.admitting()
        _ = partial.clientEvent([.input, .peerClosed], now: Self.start)
        // The FIN came with the bytes: the short read is the last one, with no recv of 0.
        guard case .close(let ended) = Self.receive(&partial, Array(Self.hello.prefix(20))) else { Issue.record("not closed"); return }
        #expect(ended.outcome == .clientClosedEarly && !ended.quiet && ended.detail == "eof_before_client_hello")

        var reset = Self.admitting()
        guard case .close(let probe) = reset.clientReadFailed(SystemCallError("recv", errno: ECONNRESET)) else { Issue.record("not closed"); return }
        #expect(probe.quiet && probe.detail == "client: recv: Connection reset by peer (errno 104)")
    }

    @Test func aTrustedPeersHeaderIsKeptEvenWhenTheClientHelloIsThenRefused() {
        var machine = Self.admitting(proxyHeader: true)
        _ = machine.clientEvent(.input, now: Self.start)
        let action = Self.receive(&machine, Array("PROXY TCP4 203.0.113.9 127.0.0.1 5000 443\r\nGET / HTTP/1.1\r\n\r\n".utf8))
        #expect(Self.name(action) == "close bad_client_hello: not_tls")
        guard case .close(let closing) = action else { return }
        #expect(closing.proxyHeader?.source == (try? SocketAddress(ipAddress: "203.0.113.9", port: 5000)))
    }

    @Test func bytesAndTheFINThatFollowTheClientHelloReachTheServerAfterTheGreeting() {
        var machine = Self.admitting()
        _ = machine.clientEvent([.input, .peerClosed], now: Self.start)
        #expect(Self.name(Self.receive(&machine, Self.hello + Array("more".utf8))) == "route tailgate.example.test \(Self.hello.count + 4)")
        _ = machine.routed(Self.route, greeting: ByteBuffer(bytes: Self.hello + Array("more".utf8)), now: Self.start)
        _ = machine.connectStarted(now: Self.start)
        _ = machine.upstreamEvent(.output, now: Self.start)
        #expect(Self.name(machine.greetingSent(Self.hello.count + 4, now: Self.start)) == "pump")
        // The client's FIN was read with its last bytes: the first pump passes it on.
        _ = machine.pump(now: Self.start) { toUpstream, toClient in
            #expect(toUpstream.source == .ended)
            #expect(toUpstream.nextStep(otherFinished: false) == .passFIN)
            toUpstream.passedFIN()
            #expect(toClient.nextStep(otherFinished: true) == .idle)
            return .init()
        }
    }

    // MARK: - Connecting

    @Test func eachServerIsTriedInTurnAndTheLastFailureIsWhatTheLogSays() {
        var machine = Self.connecting()
        #expect(Self.name(machine.connectFailed(reason: "connect: Connection refused (errno 111)", now: Self.start)) == "connect 8002")
        #expect(machine.attempt?.hasNext == false)
        #expect(Self.name(machine.timer(now: Self.start + .seconds(4))) == "abandon 8002: connect timed out after 3000 ms")
        #expect(Self.name(machine.connectFailed(reason: "connect timed out after 3000 ms", now: Self.start))
                == "close upstream_unavailable: 127.0.0.1:8002: connect timed out after 3000 ms")
    }

    /// EPOLLHUP on the client while the upstream connect runs ends the connection at once, as a reset.
    @Test func aClientHangUpWhileConnectingEndsItAtOnce() {
        var machine = Self.connecting()
        #expect(Self.name(machine.clientEvent([.input, .peerClosed, .hangUp], now: Self.start)) == "fetchError client")
        #expect(Self.name(machine.socketError(.client, 0))
                == "close reset: client: socket: Connection reset by peer (errno 104) while connecting")
    }

    /// EPOLLHUP or EPOLLERR on the upstream while connecting is a failed connect (refused when it says nothing else).
    @Test func anUpstreamHangUpWhileConnectingIsAFailedConnect() {
        var machine = Self.connecting()
        #expect(Self.name(machine.upstreamEvent([.output, .hangUp], now: Self.start)) == "fetchError upstream")
        #expect(Self.name(machine.socketError(.upstream, 0)) == "abandon 8001: connect: Connection refused (errno 111)")
        #expect(Self.name(machine.connectFailed(reason: "x", now: Self.start)) == "connect 8002")
    }

    @Test func aGreetingLargerThanTheSocketBufferWaitsForOutput() {
        var machine = Self.greeting()
        #expect(Self.name(machine.greetingSent(100, now: Self.start)) == "send \(Self.hello.count - 100)")
        #expect(Self.name(machine.greetingSent(0, now: Self.start)) == "wait")
        // Client input meanwhile is noted, not read.
        #expect(Self.name(machine.clientEvent(.input, now: Self.start)) == "wait")
        #expect(Self.name(machine.upstreamEvent(.output, now: Self.start)) == "send \(Self.hello.count - 100)")
        #expect(Self.name(machine.greetingFailed(SystemCallError("write", errno: EPIPE))) == "close error: upstream: write: Broken pipe (errno 32)")
    }

    // MARK: - Relaying

    /// A pump fails while the other direction is borrowed: the failure is returned, not acted on, and the
    /// close that follows has both directions' pipes (the one with bytes in it is not reused).
    @Test func aResetWhileADirectionIsBorrowedClosesOnceWithBothPipes() {
        var machine = Self.relaying()
        let pipes = (SplicePipe(readEnd: 90, writeEnd: 91), SplicePipe(readEnd: 92, writeEnd: 93))
        let action = machine.pump(now: Self.start) { toUpstream, toClient in
            toUpstream.tookPipe(pipes.0)
            toUpstream.spliced(received: 1_000, sent: 400)
            toClient.tookPipe(pipes.1)
            return .init(failure: .init(errno: ECONNRESET, detail: "client: splice: Connection reset by peer (errno 104)"), moved: true)
        }
        guard case .close(let closing) = action else { Issue.record("\(Self.name(action))"); return }
        #expect(closing.outcome == .reset)
        #expect(closing.pipes.map(\.pending) == [600, 0])
        #expect(Self.name(machine.clientEvent(.input, now: Self.start)) == "wait", "closed: later events change nothing")
    }

    /// EPOLLERR with bytes still unread: the bytes are relayed first, then the error is read and ends it.
    @Test func anErrorWithUnreadBytesIsReadAfterTheBytes() {
        var machine = Self.relaying()
        #expect(Self.name(machine.upstreamEvent([.input, .error], now: Self.start)) == "pump")
        var read = false
        let action = machine.pump(now: Self.start) { _, toClient in
            #expect(toClient.nextStep(otherFinished: false) == .copy)
            toClient.copied(received: 300, capacity: 16_384, leftover: [])
            read = true
            return .init(moved: true)
        }
        #expect(read)
        #expect(Self.name(action) == "fetchError upstream")
        #expect(Self.name(machine.socketError(.upstream, ECONNRESET)) == "close reset: upstream: socket: Connection reset by peer (errno 104)")
    }

    /// A hang-up whose error is already gone (a clean close both ways) goes on as the pumps decide.
    @Test func aHangUpWithoutAnErrorLetsThePumpsFinish() {
        var machine = Self.relaying()
        #expect(Self.name(machine.clientEvent([.input, .hangUp], now: Self.start)) == "pump")
        let action = machine.pump(now: Self.start) { _, _ in .init() }
        #expect(Self.name(action) == "fetchError client")
        #expect(Self.name(machine.socketError(.client, 0)) == "wait")
    }

    /// A reset after one side finished is an ordinary end (a client that closes without reading close_notify).
    @Test func aResetAfterOneSideFinishedIsClosedNotReset() {
        var machine = Self.relaying()
        let action = machine.pump(now: Self.start) { toUpstream, _ in
            toUpstream.readEnded()
            #expect(toUpstream.nextStep(otherFinished: false) == .passFIN)
            toUpstream.passedFIN()
            return .init(failure: .init(errno: EPIPE, detail: "client: send: Broken pipe (errno 32)"))
        }
        guard case .close(let closing) = action else { Issue.record("\(Self.name(action))"); return }
        #expect(closing.outcome == .closed)
    }

    @Test func bothDirectionsFinishedCloses() {
        var machine = Self.relaying()
        let action = machine.pump(now: Self.start) { toUpstream, toClient in
            toUpstream.readEnded()
            _ = toUpstream.nextStep(otherFinished: false)
            toUpstream.passedFIN()
            toClient.readEnded()
            #expect(toClient.nextStep(otherFinished: true) == .idle, "no shutdown: the close sends the FIN")
            return .init()
        }
        #expect(Self.name(action) == "close closed")
    }

    @Test func aWriteToTheClientThatWaitsWatchesItsOutputOnceAndAYieldComesBack() {
        var machine = Self.relaying()
        let action = machine.pump(now: Self.start) { toUpstream, toClient in
            toClient.sourceReported(input: true, peerClosed: false)
            toClient.copied(received: 500, capacity: 16_384, leftover: ArraySlice(repeating: 0, count: 200))
            for _ in 0..<RelayDirection.roundsPerPump { toUpstream.copied(received: 16_384, capacity: 16_384, leftover: []) }
            toUpstream.sourceReported(input: true, peerClosed: false)
            #expect(toUpstream.nextStep(otherFinished: false) == .yield)
            return .init(moved: true)
        }
        #expect(Self.name(action) == "watchOutput")
        #expect(Self.name(machine.watchingClientOutput()) == "resumeLater")
        #expect(machine.clientWatchesOutput)
        #expect(Self.name(machine.resumed()) == "pump")
        let again = machine.pump(now: Self.start) { _, _ in .init() }
        #expect(Self.name(again) == "wait", "watched once; no yield left")
    }

    @Test func activityPostponesTheIdleTimeout() {
        var machine = Self.relaying()
        _ = machine.pump(now: Self.start + .seconds(50)) { _, _ in .init(moved: true) }
        #expect(Self.name(machine.timer(now: Self.start + .seconds(100))) == "wait")
        #expect(Self.name(machine.timer(now: Self.start + .seconds(110))) == "close idle_timeout")
    }
}
