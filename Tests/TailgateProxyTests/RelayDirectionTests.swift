import Testing
@testable import TailgateProxy

/// One direction's pump without sockets: which step comes next after each result.
@Suite struct RelayDirectionTests {
    static let pipe = SplicePipe(readEnd: 90, writeEnd: 91)

    static func readable(peerClosed: Bool = false) -> RelayDirection {
        var direction = RelayDirection()
        direction.sourceReported(input: true, peerClosed: peerClosed)
        direction.beginPump()
        return direction
    }

    @Test func smallExchangesAreCopiedAndAShortReadWaitsForTheNextEdge() {
        var direction = Self.readable()
        #expect(direction.nextStep(otherFinished: false) == .copy)
        direction.copied(received: 300, capacity: 16_384, leftover: [])
        #expect(direction.source == .drained(peerClosed: false))
        #expect(direction.nextStep(otherFinished: false) == .idle)
        #expect(!direction.spliced)
    }

    /// With the FIN reported, the short read is the last one: the stream ends without a recv of 0.
    @Test func aShortReadAfterTheFINEndsTheStreamAndPassesItOn() {
        var direction = Self.readable(peerClosed: true)
        direction.copied(received: 10, capacity: 16_384, leftover: [])
        #expect(direction.source == .ended)
        #expect(direction.nextStep(otherFinished: false) == .passFIN)
        direction.passedFIN()
        #expect(direction.isFinished)
        #expect(direction.nextStep(otherFinished: false) == .idle)
    }

    @Test func theFINWaitsUntilTheHeldBytesAreOut() {
        var direction = Self.readable(peerClosed: true)
        direction.copied(received: 10, capacity: 16_384, leftover: [1, 2, 3])
        #expect(direction.nextStep(otherFinished: false) == .idle, "the destination is full")
        direction.destinationWritable()
        #expect(direction.nextStep(otherFinished: false) == .flushHeld)
        direction.flushedHeld(sent: 2)
        #expect(direction.nextStep(otherFinished: false) == .idle)
        direction.destinationWritable()
        direction.flushedHeld(sent: 1)
        #expect(direction.nextStep(otherFinished: false) == .passFIN)
    }

    @Test func aFullBufferSwitchesToSpliceThroughAPipeThatIsGivenBackWhenEmpty() {
        var direction = Self.readable()
        direction.copied(received: 16_384, capacity: 16_384, leftover: [])
        #expect(direction.spliced)
        #expect(direction.nextStep(otherFinished: false) == .takePipe)
        direction.tookPipe(Self.pipe)
        #expect(direction.nextStep(otherFinished: false) == .splice(room: SplicePipePool.chunk))
        direction.spliced(received: 65_536, sent: 65_536)
        direction.readWouldBlock()
        #expect(direction.nextStep(otherFinished: false) == .releasePipe)
        direction.releasedPipe()
        #expect(direction.pipe == nil)
        #expect(direction.nextStep(otherFinished: false) == .idle)
    }

    /// A full pipe must wait for the destination: splice asked for 0 bytes returns 0, which reads as the end
    /// of the stream and would cut it short.
    @Test func aFullPipeWaitsInsteadOfAskingSpliceForNothing() {
        var direction = Self.readable()
        direction.copied(received: 16_384, capacity: 16_384, leftover: [])
        direction.tookPipe(Self.pipe)
        direction.spliced(received: SplicePipePool.chunk, sent: 0)
        direction.destinationWritable()  // as if an EPOLLOUT came before the flush
        #expect(direction.nextStep(otherFinished: false) == .flushPipe(count: SplicePipePool.chunk))
        direction.flushedPipe(sent: 0)
        #expect(direction.nextStep(otherFinished: false) == .idle)
        #expect(direction.source == .readable(peerClosed: false), "still readable: nothing was lost")
    }

    @Test func aPipeWithBytesInItIsNeitherReleasedNorFinished() {
        var direction = Self.readable(peerClosed: true)
        direction.copied(received: 16_384, capacity: 16_384, leftover: [])
        direction.tookPipe(Self.pipe)
        direction.spliced(received: 100, sent: 40)
        direction.readEnded()
        #expect(direction.nextStep(otherFinished: false) == .idle)
        #expect(direction.pipe?.pending == 60)
        direction.destinationWritable()
        #expect(direction.nextStep(otherFinished: false) == .flushPipe(count: 60))
        direction.flushedPipe(sent: 60)
        #expect(direction.nextStep(otherFinished: false) == .releasePipe)
        direction.releasedPipe()
        #expect(direction.nextStep(otherFinished: false) == .passFIN)
    }

    @Test func aBusySourceYieldsAfterItsShareOfReads() {
        var direction = Self.readable()
        for _ in 0..<RelayDirection.roundsPerPump {
            #expect(direction.nextStep(otherFinished: false) == .copy)
            direction.copied(received: 100, capacity: 16_384, leftover: [])
            direction.sourceReported(input: true, peerClosed: false)
        }
        #expect(direction.nextStep(otherFinished: false) == .yield)
        #expect(direction.yielded)
        direction.beginPump()
        #expect(!direction.yielded)
        #expect(direction.nextStep(otherFinished: false) == .copy)
    }

    /// The FIN reported while the queue was drained is remembered: the next read that comes back empty ends it.
    @Test func aFINReportedWithoutInputIsRememberedUntilTheNextRead() {
        var direction = RelayDirection()
        direction.sourceReported(input: false, peerClosed: true)
        #expect(direction.source == .drained(peerClosed: true))
        direction.sourceReported(input: true, peerClosed: false)
        #expect(direction.source == .readable(peerClosed: true))
        direction.readWouldBlock()
        #expect(direction.source == .drained(peerClosed: true))
    }

    @Test func anEndedStreamIgnoresLaterReadiness() {
        var direction = Self.readable()
        direction.readEnded()
        direction.sourceReported(input: true, peerClosed: true)
        #expect(direction.source == .ended)
        #expect(direction.nextStep(otherFinished: true) == .idle)
        #expect(direction.isFinished, "the other way is done: the close sends the FIN")
    }
}
