import Foundation
import TailgateTestSupport
import Testing

/// SIGTERM drain, the second SIGTERM, and sd_notify against a real datagram socket.
@Suite(.serialized)
struct LifecycleIntegrationTests {
    static func config(port: Int, upstream: Int, drain: String) -> String {
        """
        [global]
        drain_timeout = "\(drain)"
        [listeners.public]
        bind = ["127.0.0.1:\(port)"]
        default = "files"
        [upstreams.files]
        servers = ["127.0.0.1:\(upstream)"]
        """
    }

    /// Starts tailgate (one listener, upstream port 9, drain 1 s) telling `notify` what systemd would hear.
    static func startNotifying(_ notify: NotifySocket, in sandbox: Sandbox) throws -> ChildProcess {
        try sandbox.write("tailgate.toml", config(port: TestPort.free(), upstream: 9, drain: "1s"))
        return try sandbox.start("tailgate", Sandbox.tailgateBinary, ["run", "--config", sandbox.path("tailgate.toml")],
                                 environment: ["NOTIFY_SOCKET": notify.path])
    }

    @Test func sigtermLetsATransferFinishRefusesNewConnectionsAndExitsCleanly() throws {
        let sandbox = try Sandbox("drain")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["files.example.com"])
        let upstream = try NginxUpstream.start("files", in: sandbox)
        _ = Command.run("/bin/sh", ["-c", "head -c 20971520 /dev/urandom > \(upstream.root)/files/blob"])
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: Self.config(port: port, upstream: upstream.plainPort, drain: "20s"), in: sandbox)
        // A 20 MiB download at 5 MiB/s: still running when SIGTERM arrives.
        let download = try sandbox.start("download", "/usr/bin/curl", [
            "-sS", "--cacert", sandbox.path("ca.crt"), "--limit-rate", "5M", "--resolve", "files.example.com:\(port):127.0.0.1",
            "-o", sandbox.path("blob.copy"), "https://files.example.com:\(port)/files/blob",
        ])
        #expect(Poll.until(timeout: 10) { (try? FileManager.default.attributesOfItem(atPath: sandbox.path("blob.copy"))[.size] as? Int) ?? 0 > 1_000_000 })
        let stopped = Date()
        tailgate.process.signal(SIGTERM)
        #expect(tailgate.process.waitForOutput("stopping: no longer accepting"))
        #expect((try? RawClient(host: "127.0.0.1", port: port)) == nil, "new connections are refused while draining")
        #expect(download.waitForExit(timeout: 20))
        #expect(download.exitStatus == 0)
        #expect(tailgate.process.waitForExit(timeout: 10))
        #expect(tailgate.process.exitStatus == 0)
        #expect(Date().timeIntervalSince(stopped) < 20)
        let sums = Command.run("/usr/bin/sha256sum", ["\(upstream.root)/files/blob", sandbox.path("blob.copy")]).output
            .split(separator: "\n").map { $0.prefix(64) }
        #expect(sums.count == 2 && sums[0] == sums[1])
        #expect(!tailgate.process.output.contains("drain_timeout reached"))
    }

    @Test func drainTimeoutClosesWhatIsLeftAndASecondSigtermCutsItShort() throws {
        let sandbox = try Sandbox("drain-timeout")
        defer { sandbox.tearDown() }
        let server = try RawServer(.drain)
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: Self.config(port: port, upstream: server.port, drain: "2s"), in: sandbox)
        let client = try RawClient(host: "127.0.0.1", port: port)
        client.send(try Captures.load("curl.bin"))
        #expect(Poll.until(timeout: 5) { server.received.count > 0 })
        let stopped = Date()
        tailgate.process.signal(SIGTERM)
        #expect(client.waitForClose(timeout: 6))
        #expect(Date().timeIntervalSince(stopped) >= 1.8)
        #expect(tailgate.process.waitForExit(timeout: 5))
        #expect(tailgate.process.exitStatus == 0)
        #expect(tailgate.process.output.contains("drain_timeout reached; closing remaining connections"))
        #expect(tailgate.waitForConnectionLine(containing: ["outcome=drain_timeout"]) != nil)

        // Now with a long drain_timeout and a second SIGTERM.
        let server2 = try RawServer(.drain)
        let port2 = TestPort.free()
        let second = try TailgateInstance.start(config: Self.config(port: port2, upstream: server2.port, drain: "60s"), in: sandbox, name: "second")
        let client2 = try RawClient(host: "127.0.0.1", port: port2)
        client2.send(try Captures.load("curl.bin"))
        #expect(Poll.until(timeout: 5) { server2.received.count > 0 })
        second.process.signal(SIGTERM)
        #expect(second.process.waitForOutput("stopping: no longer accepting"))
        let again = Date()
        second.process.signal(SIGTERM)
        #expect(client2.waitForClose(timeout: 5))
        #expect(second.process.waitForExit(timeout: 5))
        #expect(Date().timeIntervalSince(again) < 5)
        #expect(second.process.exitStatus == 0)
        #expect(second.process.output.contains("second stop signal: closing remaining connections"))
    }

    @Test func systemdHearsReadyReloadingWatchdogAndStopping() throws {
        let sandbox = try Sandbox("notify")
        defer { sandbox.tearDown() }
        let notify = try NotifySocket(path: sandbox.path("notify.sock"))
        defer { notify.shutdown() }
        let port = TestPort.free()
        try sandbox.write("tailgate.toml", Self.config(port: port, upstream: 9, drain: "1s"))
        let process = try sandbox.start("tailgate", Sandbox.tailgateBinary, ["run", "--config", sandbox.path("tailgate.toml")],
                                        environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "600000"])
        let ready = notify.waitFor(["READY=1", "MAINPID=\(process.pid)", "STATUS="])
        #expect(ready != nil)
        #expect(ready?.text.contains("STATUS=generation 1 (") == true)
        #expect(TestPort.waitUntilAccepting(port, timeout: 1), "READY=1 only once listeners are bound")
        let watchdog = notify.waitFor(["WATCHDOG=1"], from: ready?.index ?? 0, timeout: 3)
        #expect(watchdog != nil)

        process.signal(SIGHUP)
        let reloading = notify.waitFor(["RELOADING=1", "MONOTONIC_USEC="], from: ready?.index ?? 0)
        #expect(reloading != nil)
        let monotonic = reloading?.text.split(separator: "\n").first { $0.hasPrefix("MONOTONIC_USEC=") }.flatMap { UInt64($0.dropFirst(15)) }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nowMicros = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        #expect(monotonic.map { $0 <= nowMicros && nowMicros - $0 < 10_000_000 } == true)
        let readyAgain = notify.waitFor(["READY=1"], from: (reloading?.index ?? 0) + 1)
        #expect(readyAgain?.text.contains("STATUS=generation 2 (") == true)

        process.signal(SIGTERM)
        #expect(notify.waitFor(["STOPPING=1"], from: readyAgain?.index ?? 0) != nil)
        #expect(process.waitForExit(timeout: 10))
        #expect(process.exitStatus == 0)
    }

    /// `systemctl status` shows the STATUS= line, refreshed periodically: a refused reload and a drain must
    /// stay in it, not be overwritten by the next refresh.
    @Test func systemdStatusKeepsARefusedReloadAndTheDrain() throws {
        let sandbox = try Sandbox("notify-status")
        defer { sandbox.tearDown() }
        let notify = try NotifySocket(path: sandbox.path("notify.sock"))
        defer { notify.shutdown() }
        let port = TestPort.free()
        let good = Self.config(port: port, upstream: 9, drain: "3s")
        try sandbox.write("tailgate.toml", good)
        let process = try sandbox.start("tailgate", Sandbox.tailgateBinary, ["run", "--config", sandbox.path("tailgate.toml")],
                                        environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "600000"])
        let ready = try #require(notify.waitFor(["READY=1"]))
        func statuses(after index: Int) -> [String] {
            notify.messages.dropFirst(index + 1).flatMap { $0.text.split(separator: "\n") }.filter { $0.hasPrefix("STATUS=") }.map(String.init)
        }
        try sandbox.write("tailgate.toml", good + "\nbogus = 1\n")
        process.signal(SIGHUP)
        #expect(process.waitForOutput("reload failed;"))
        // Refreshed every 0.3 s here: two refreshes after the refusal still say so. (A refresh between READY
        // and the SIGHUP rightly says "generation 1": only what follows the refusal counts.)
        let refused = try #require(notify.waitFor(["STATUS="], from: ready.index + 1) { $0.contains("STATUS=reload failed") })
        #expect(Poll.until(timeout: 5) { statuses(after: refused.index - 1).filter { $0.hasPrefix("STATUS=generation") }.isEmpty
            && statuses(after: refused.index - 1).filter { $0.hasPrefix("STATUS=reload failed (1 errors), still serving generation 1 (") }.count >= 3 },
            "\(statuses(after: refused.index - 1))")
        try sandbox.write("tailgate.toml", good)
        process.signal(SIGHUP)
        let applied = try #require(notify.waitFor(["READY=1", "STATUS="], from: ready.index + 1) { $0.contains("generation 2") })
        #expect(applied.text.contains("STATUS=generation 2 ("), "\(applied.text)")

        // A client that sends nothing holds the drain (its ClientHello timeout is 5 s, the drain 3 s).
        let client = try RawClient(host: "127.0.0.1", port: port)
        defer { client.close() }
        #expect(notify.waitFor(["STATUS="], from: applied.index) { $0.contains(", 1 connections") } != nil, "never accepted")
        process.signal(SIGTERM)
        let stopping = try #require(notify.waitFor(["STOPPING=1"], from: applied.index))
        #expect(Poll.until(timeout: 2) { statuses(after: stopping.index).count >= 2 }, "\(notify.messages.map(\.text)) \(process.output)")
        #expect(statuses(after: stopping.index).allSatisfy { $0 == "STATUS=draining connections: 1 left" }, "\(statuses(after: stopping.index))")
        #expect(process.waitForExit(timeout: 10))
    }

    /// The notify service sleeps between refreshes (5 s without a watchdog); once the proxy has drained the
    /// process must exit at once, not at its next tick: every restart refuses connections meanwhile.
    @Test func withNotifySocketTheProcessExitsAsSoonAsItHasDrained() throws {
        let sandbox = try Sandbox("notify-exit")
        defer { sandbox.tearDown() }
        let notify = try NotifySocket(path: sandbox.path("notify.sock"))
        defer { notify.shutdown() }
        let spawned = ContinuousClock.now
        let process = try Self.startNotifying(notify, in: sandbox)
        #expect(notify.waitFor(["READY=1"]) != nil)
        process.signal(SIGTERM)
        let signalled = ContinuousClock.now - spawned
        #expect(process.waitForExit(timeout: 10))
        let exited = ContinuousClock.now - spawned
        // The service started after the spawn, so its first tick, which a process that waited for it would exit
        // at, comes 5 s after the spawn at the soonest: exiting before then is exiting at once, however long a
        // busy machine makes the start and the stop. (A signal sent after 4 s leaves the stop too little time
        // to tell.)
        if signalled < .seconds(4) {
            #expect(exited < .seconds(5), "exited \(exited) after the spawn, SIGTERM sent \(signalled) after it")
        }
        #expect(process.exitStatus == 0)
        #expect(!notify.messages.drop { !$0.text.contains("STOPPING=1") }.dropFirst().contains { $0.text.contains("STATUS=generation") })
    }

    @Test func aReloadThatBlocksHoldsNeitherTheHealthEndpointNorTheStop() throws {
        let sandbox = try Sandbox("reload-blocks")
        defer { sandbox.tearDown() }
        let notify = try NotifySocket(path: sandbox.path("notify.sock"))
        defer { notify.shutdown() }
        let (tailgate, _, healthPort) = try TailgateInstance.startWithHealth(
            in: sandbox, environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "600000"]
        )
        try FileManager.default.removeItem(atPath: tailgate.configPath)
        #expect(mkfifo(tailgate.configPath, 0o600) == 0)
        tailgate.process.signal(SIGHUP)
        #expect(tailgate.process.waitForOutput("reloading config="))
        let reloading = try #require(notify.waitFor(["RELOADING=1"]))
        Thread.sleep(forTimeInterval: 0.7)
        // The periodic refresh (every 0.3 s here) still says a reload is under way.
        let refreshed = notify.messages.dropFirst(reloading.index + 1).map(\.text).filter { $0.contains("STATUS=") }
        #expect(!refreshed.isEmpty && refreshed.allSatisfy { $0.contains("STATUS=reloading \(tailgate.configPath), still serving generation 1 (") },
                "\(refreshed)")
        #expect(HealthIntegrationTests.http(healthPort, "/readyz") == ("200", "{\"ready\":true}\n"))
        #expect(HealthIntegrationTests.http(healthPort, "/status").body.contains("\"generation\":1"))
        // A stop that waited for the blocked read would never come.
        tailgate.process.signal(SIGTERM)
        #expect(tailgate.process.waitForExit(timeout: 10), "no exit within 10 s of SIGTERM")
        #expect(tailgate.process.exitStatus == 0)
    }

    /// SIGHUP is trapped before the file is first read (which may wait on DNS at boot): one that comes then
    /// is served once the agent is ready instead of ending the process.
    @Test func aSighupWhileTheFileIsFirstReadIsServedOnceReady() throws {
        let sandbox = try Sandbox("hup-first-read")
        defer { sandbox.tearDown() }
        let path = sandbox.path("tailgate.toml")
        #expect(mkfifo(path, 0o600) == 0)
        let process = try sandbox.start("tailgate", Sandbox.tailgateBinary, ["run", "--config", path])
        // A non-blocking open for writing succeeds once the agent has opened the FIFO to read it.
        var descriptor: Int32 = -1
        #expect(Poll.until(timeout: 10) {
            descriptor = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            return descriptor >= 0
        }, "the agent never opened its config file")
        process.signal(SIGHUP)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(process.isRunning, "a SIGHUP while the file was read ended the process: \(process.output)")
        _ = fcntl(descriptor, F_SETFL, 0)
        let writer = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
        writer.write(Data(Self.config(port: TestPort.free(), upstream: 9, drain: "1s").utf8))
        close(descriptor)
        #expect(process.waitForOutput(" ready "), "\(process.output)")
        // The reload reads the FIFO again, on the loader thread; the agent still stops at once.
        #expect(process.waitForOutput("reloading config="), "\(process.output)")
        process.signal(SIGTERM)
        #expect(process.waitForExit(timeout: 5))
        #expect(process.exitStatus == 0)
    }

    @Test func aReloadRequestedTheMomentReadyIsSentIsServed() throws {
        let sandbox = try Sandbox("hup-at-ready")
        defer { sandbox.tearDown() }
        let notify = try NotifySocket(path: sandbox.path("notify.sock"))
        defer { notify.shutdown() }
        let process = try Self.startNotifying(notify, in: sandbox)
        let ready = notify.waitFor(["READY=1"])
        // systemctl reload may follow READY=1 at once; the signal must be trapped by then, not end the process.
        process.signal(SIGHUP)
        #expect(ready != nil)
        #expect(notify.waitFor(["READY=1"], from: (ready?.index ?? 0) + 1, timeout: 10)?.text.contains("generation 2") == true)
        #expect(process.isRunning)
        #expect(process.waitForOutput(" reloaded generation=2"))
    }

    /// An idle agent is not scheduled: nothing wakes on a period to look for work when there is none (no
    /// upstream checks, no firewall, no connections). On a 1 GB cloud VM every wake-up is paid for; a
    /// 100 ms poll in the checker once cost ~45 thread wake-ups a second.
    @Test func anIdleAgentSleeps() throws {
        let sandbox = try Sandbox("idle")
        defer { sandbox.tearDown() }
        let (tailgate, _, _) = try TailgateInstance.startWithHealth(in: sandbox)
        let pid = tailgate.process.pid
        #expect(Self.contextSwitches(pid) > 0)
        // Start-up work (and the probe of the health port) ends some time after ready, later on a busy
        // machine; a periodic wake-up never ends. So within 30 s some 3 s window must hold at most 10
        // wake-ups, pro rata to its measured length: a tenth of what the 100 ms poll cost.
        var windows: [String] = []
        let quiet = Poll.until(timeout: 30, every: 0) {
            let before = Self.contextSwitches(pid)
            let opened = ContinuousClock.now
            usleep(3_000_000)
            let wakeUps = Self.contextSwitches(pid) - before
            let seconds = (ContinuousClock.now - opened) / .seconds(1)
            windows.append("\(wakeUps) in \(seconds) s")
            return Double(wakeUps) <= 10 * seconds / 3
        }
        #expect(quiet, "thread wake-ups of an idle agent, window by window: \(windows)")
    }

    /// Voluntary and involuntary context switches of all the process's threads.
    static func contextSwitches(_ pid: Int32) -> Int {
        threadFiles(pid, "status").reduce(0) { total, status in
            total + status.split(separator: "\n").reduce(0) { sum, line in
                guard line.hasPrefix("voluntary_ctxt_switches:") || line.hasPrefix("nonvoluntary_ctxt_switches:") else { return sum }
                return sum + (Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0)
            }
        }
    }
}
