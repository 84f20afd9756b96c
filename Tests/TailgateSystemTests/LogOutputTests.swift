import Glibc
import Synchronization
import TailgateSystem
import Testing

/// The log writer against a real pipe whose reader stops reading, as a stalled journald or a hung
/// `| tee` is: writers never wait, what does not fit is dropped and counted, and the loss is owned up to.
@Suite struct LogOutputTests {
    @Test func aReaderThatStopsCostsWritersNothingAndTheLossIsOwnedUpTo() throws {
        var ends: [CInt] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]) }
        // The pipe is full before the first line: the writer's first write blocks.
        let flags = fcntl(ends[1], F_GETFL)
        _ = fcntl(ends[1], F_SETFL, flags | O_NONBLOCK)
        let filler = Array((String(repeating: "f", count: 49) + "\n").utf8)
        while write(ends[1], filler, filler.count) == filler.count {}
        _ = fcntl(ends[1], F_SETFL, flags)
        let output = LogOutput(descriptor: ends[1], capacity: 64 * 1_024)
        output.describeLoss { Array("lost \($0)\n".utf8) }
        output.startWriter()
        let line = Array((String(repeating: "x", count: 99) + "\n").utf8)
        // 10,000 lines of 100 bytes: ten times what the pipe (64 KiB) and the queue (64 KiB) hold together.
        // Were any write to wait for the reader, this loop would never end.
        for _ in 0..<10_000 { output.write(line) }
        #expect(output.droppedLines > 0)
        #expect(output.droppedLines < 10_000)
        #expect(!output.flush(milliseconds: 100), "nothing reads the pipe: the queue cannot drain")

        // The reader comes back: what was queued arrives, and after it the count of what was not.
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        func tally() -> (whole: Int, lost: Int) {
            var whole = 0, lost = 0
            for line in String(decoding: received, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                if line.hasPrefix("lost ") { lost += Int(line.dropFirst(5)) ?? 0 } else if line.count == 99 { whole += 1 }
            }
            return (whole, lost)
        }
        let deadline = time(nil) + 30
        while tally().whole + tally().lost < 10_000, time(nil) < deadline {
            var readable = pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
            guard poll(&readable, 1, 1_000) > 0 else { continue }
            let count = read(ends[0], &buffer, buffer.count)
            guard count > 0 else { break }
            received += buffer[0..<count]
        }
        let (whole, lost) = tally()
        #expect(lost == output.droppedLines, "the loss lines add up to the dropped count")
        #expect(whole + lost == 10_000, "every line is either written whole or counted as dropped")
        #expect(output.flush(milliseconds: 10_000))
        close(ends[1])
    }

    @Test func beforeTheWriterStartsLinesAreWrittenAtOnce() throws {
        var ends: [CInt] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let output = LogOutput(descriptor: ends[1], capacity: 1_024)
        output.write(Array("now\n".utf8))
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = read(ends[0], &buffer, buffer.count)
        #expect(count == 4)
    }
}
