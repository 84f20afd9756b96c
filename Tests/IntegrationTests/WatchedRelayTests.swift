import Foundation
import Synchronization
import TailgateTestSupport
import Testing

/// What an operator's bad hours do to a running agent: a log reader that stops reading, a relay thread that
/// stops running. Neither may go unnoticed or take the rest of the agent down with it.
@Suite(.serialized)
struct WatchedRelayTests {
    /// stderr goes into a FIFO that is held open and not read (journald stuck, `| tee` whose reader hangs):
    /// traffic, /healthz and SIGTERM go on as if nothing happened, the lines that did not fit are counted,
    /// and once the reader is back one line says how many were lost.
    @Test func aLogReaderThatStopsReadingHoldsUpNeitherTrafficNorTheStop() throws {
        let sandbox = try Sandbox("log-stall")
        defer { sandbox.tearDown() }
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let server = try ConversationServer(threads: 8) { $0.answerAfterEOF() }
        defer { server.stop() }
        let port = TestPort.free(), healthPort = TestPort.free()
        try sandbox.write("tailgate.toml", """
            [global]
            drain_timeout = "2s"
            [log]
            buffer = "64KiB"
            [health]
            listen = "127.0.0.1:\(healthPort)"
            [listeners.stall]
            bind = ["127.0.0.1:\(port)"]
            default = "talk"
            [upstreams.talk]
            servers = ["127.0.0.1:\(server.port)"]
            """)
        // The process's output file is a FIFO; this end is held open and read only when the test says.
        let fifo = sandbox.path("tailgate.log")
        try #require(mkfifo(fifo, 0o600) == 0)
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        try #require(reader >= 0)
        defer { close(reader) }
        let process = try sandbox.start("tailgate", Sandbox.tailgateBinary, ["run", "--config", sandbox.path("tailgate.toml")])
        try #require(TestPort.waitUntilAccepting(healthPort), "the agent did not start")

        // 2,000 connections, each a connection line: several times what the pipe and the queue (64 KiB) hold.
        #expect(Self.serve(2_000, port: port, hello: hello) == 0)
        #expect(HealthIntegrationTests.http(healthPort, "/healthz") == ("200", "ok\n"))
        let dropped = Self.droppedLines(healthPort)
        #expect(dropped > 0, "the lines that did not fit are counted")

        // The reader resumes: the queued lines arrive, then the line that owns up to the loss.
        var log = ""
        #expect(Poll.until(timeout: 20) {
            log += Self.readAvailable(reader)
            return log.contains("log lines dropped")
        }, "\(log.suffix(500))")
        let lossLine = log.split(separator: "\n").first { $0.contains("log lines dropped") } ?? ""
        #expect(lossLine.contains(" warning "), "\(lossLine)")
        let reported = Int(lossLine.components(separatedBy: "dropped_lines=").last ?? "") ?? 0
        #expect(reported > 0 && reported <= Self.droppedLines(healthPort), "\(lossLine)")

        // The reader stops again and the traffic fills the pipe once more; a stop still ends the agent.
        #expect(Self.serve(2_000, port: port, hello: hello) == 0)
        process.signal(SIGTERM)
        #expect(process.waitForExit(timeout: 15), "SIGTERM did not stop an agent whose stderr is not read")
        #expect(process.exitStatus == 0)
    }

    /// One relay thread stopped with ptrace while every other thread runs (a wedged thread, as a monitor
    /// sees it): /healthz answers 503 naming it and WATCHDOG=1 stops; both come back when it runs again.
    @Test func aStoppedRelayThreadFailsHealthzAndWithholdsTheWatchdogUntilItRunsAgain() throws {
        let sandbox = try Sandbox("wedged")
        defer { sandbox.tearDown() }
        let notify = try NotifySocket(path: sandbox.path("notify.sock"))
        defer { notify.shutdown() }
        let (tailgate, _, healthPort) = try TailgateInstance.startWithHealth(
            in: sandbox, environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "600000"]
        )
        let process = tailgate.process
        try #require(notify.waitFor(["WATCHDOG=1"]) != nil)
        #expect(HealthIntegrationTests.http(healthPort, "/healthz") == ("200", "ok\n"))
        let thread = try #require(Self.thread(named: "splice-1", of: process.pid), "no relay thread splice-1")

        let tracer = try sandbox.start("tracer", "/usr/bin/python3", ["-c", Self.stopThread, String(thread)])
        try #require(tracer.waitForOutput("stopped"), "ptrace: \(tracer.output)")
        #expect(Poll.until(timeout: 10) { HealthIntegrationTests.http(healthPort, "/healthz").code == "503" })
        #expect(HealthIntegrationTests.http(healthPort, "/healthz").body == "not responding: splice-1\n")
        #expect(process.waitForOutput("not answering; withholding the systemd watchdog threads=splice-1"))
        // Once the agent has said so, no WATCHDOG=1 follows (five periods of 0.3 s are watched).
        let quiet = notify.messages.count
        #expect(notify.waitFor(["WATCHDOG=1"], from: quiet, timeout: 1.5) == nil)

        tracer.stop()  // detaches: the thread runs again
        #expect(Poll.until(timeout: 10) { HealthIntegrationTests.http(healthPort, "/healthz") == ("200", "ok\n") })
        #expect(notify.waitFor(["WATCHDOG=1"], from: quiet, timeout: 10) != nil)
        #expect(process.waitForOutput("every relay thread and event loop answers again"))
    }

    /// Stops one thread (not its process) with PTRACE_SEIZE + PTRACE_INTERRUPT, says "stopped", and
    /// detaches on SIGTERM.
    static let stopThread = """
        import ctypes, os, signal, sys
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        tid = int(sys.argv[1])
        if libc.ptrace(0x4206, tid, None, None) != 0 or libc.ptrace(0x4207, tid, None, None) != 0:
            print("ptrace failed: errno", ctypes.get_errno(), flush=True)
            sys.exit(1)
        os.waitpid(tid, 0x40000000)
        print("stopped", flush=True)
        def detach(*_):
            libc.ptrace(17, tid, None, None)
            sys.exit(0)
        signal.signal(signal.SIGTERM, detach)
        while True:
            signal.pause()
        """

    /// The id of `pid`'s thread called `name` (/proc/PID/task/TID/comm).
    static func thread(named name: String, of pid: Int32) -> Int32? {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.first { task in
            (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == name
        }.flatMap { Int32($0) }
    }

    /// Serves `count` connections, 8 at a time (ClientHello and a few bytes, half-close, the server's
    /// answer); returns how many did not get their answer.
    static func serve(_ count: Int, port: Int, hello: [UInt8]) -> Int {
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for _ in stride(from: worker, to: count, by: 8) {
                guard let connection = try? RawClient(host: "127.0.0.1", port: port) else {
                    failures.withLock { $0 += 1 }
                    continue
                }
                connection.send(hello + Array("and the rest".utf8))
                connection.shutdownWrite()
                let answer = String(decoding: connection.receive(atLeast: Int.max, timeout: 10), as: UTF8.self)
                connection.close()
                if answer != "got \(hello.count + 12) bytes" { failures.withLock { $0 += 1 } }
            }
        }
        return failures.withLock { $0 }
    }

    static func droppedLines(_ healthPort: Int) -> Int {
        let metrics = HealthIntegrationTests.http(healthPort, "/metrics").body
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("tailgate_log_lines_dropped_total ") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? -1
    }

    static func readAvailable(_ descriptor: Int32) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
