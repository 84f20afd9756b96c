import CTailgateLinux
import Glibc
import TailgateSystem

extension SpliceSession {
    typealias PumpFailure = SessionStateMachine.PumpFailure

    /// Moves what is ready toward the upstream, then toward the client. Reads (and passes on) whatever
    /// arrived before looking at errors: a server may answer and then reset.
    func pumpBoth(_ toUpstream: inout RelayDirection, _ toClient: inout RelayDirection, loop: SpliceLoop) -> SessionStateMachine.PumpReport {
        var report = SessionStateMachine.PumpReport()
        report.failure = pump(&toUpstream, from: client, to: upstream, towardUpstream: true, otherFinished: toClient.isFinished, loop: loop, moved: &report.moved)
        if report.failure == nil {
            report.failure = pump(&toClient, from: upstream, to: client, towardUpstream: false, otherFinished: toUpstream.isFinished, loop: loop, moved: &report.moved)
        }
        if responseDelivered {
            toUpstream.abandon()
        }
        return report
    }

    /// Performs the steps of one direction until it has nothing more to do this turn; a failure is
    /// returned with the direction's state up to date (a pipe's bytes counted, so that it is not reused).
    private func pump(
        _ direction: inout RelayDirection, from source: CInt, to destination: CInt, towardUpstream: Bool, otherFinished: Bool,
        loop: SpliceLoop, moved: inout Bool
    ) -> PumpFailure? {
        while true {
            switch direction.nextStep(otherFinished: otherFinished) {
            case .idle, .yield:
                return nil
            case .flushHeld:
                guard case .held(let bytes) = direction.inFlight else { return nil }
                let sent = bytes.withUnsafeBytes { tailgate_send(destination, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
                guard sent >= 0 || errno == EAGAIN else { return writeFailure(towardUpstream: towardUpstream, call: "send") }
                direction.flushedHeld(sent: max(0, sent))
            case .flushPipe(let count):
                guard let (pipe, _) = direction.pipe else { return nil }
                let sent = tailgate_splice(pipe.readEnd, destination, count)
                guard sent >= 0 || errno == EAGAIN else { return writeFailure(towardUpstream: towardUpstream, call: "splice") }
                direction.flushedPipe(sent: max(0, sent))
            case .copy:
                let scratch = loop.scratch
                let received = tailgate_recv(source, scratch.baseAddress, scratch.count, 0)
                guard received > 0 else {
                    if let failure = endOfRead(received, &direction, towardUpstream: towardUpstream, call: "recv") { return failure }
                    continue
                }
                noteRead(received, towardUpstream: towardUpstream, moved: &moved)
                let sent = tailgate_send(destination, scratch.baseAddress, received, CInt(MSG_NOSIGNAL))
                let failure = sent < 0 && errno != EAGAIN ? writeFailure(towardUpstream: towardUpstream, call: "send") : nil
                let written = max(0, sent)
                direction.copied(received: received, capacity: scratch.count, leftover: written < received ? Self.bytes(scratch, written..<received) : [])
                if let failure { return failure }
            case .takePipe:
                guard let pipe = loop.pipes.take() else { return PumpFailure(errno: nil, detail: SystemCallError("pipe2").description) }
                direction.tookPipe(pipe)
            case .splice(let room):
                guard let (pipe, pending) = direction.pipe else { return nil }
                let received = tailgate_splice(source, pipe.writeEnd, room)
                guard received > 0 else {
                    if let failure = endOfRead(received, &direction, towardUpstream: towardUpstream, call: "splice") { return failure }
                    continue
                }
                noteRead(received, towardUpstream: towardUpstream, moved: &moved)
                let sent = tailgate_splice(pipe.readEnd, destination, pending + received)
                let failure = sent < 0 && errno != EAGAIN ? writeFailure(towardUpstream: towardUpstream, call: "splice") : nil
                direction.spliced(received: received, sent: max(0, sent))
                if let failure { return failure }
            case .releasePipe:
                if let (pipe, _) = direction.pipe { loop.pipes.give(pipe) }
                direction.releasedPipe()
            case .passFIN:
                if !towardUpstream, endsWithResponse, clientIsQuiet(loop: loop) {
                    // HTTP: the server ended the connection and the response is out; as nginx and HAProxy
                    // do, the close follows now (it sends the FIN) instead of after the client's own FIN.
                    responseDelivered = true
                    direction.passedFIN()
                    continue
                }
                // The FIN goes on; when the other way is done too, the close that follows sends it.
                shutdown(destination, CInt(SHUT_WR))
                direction.passedFIN()
            }
        }
    }

    /// The client has sent nothing that is still unread: a close then sends a FIN, not a reset that could
    /// destroy the response on its way. (Its FIN may be queued: a close is clean then too.)
    private func clientIsQuiet(loop: SpliceLoop) -> Bool {
        let peeked = tailgate_recv(client, loop.scratch.baseAddress, 1, CInt(MSG_PEEK | MSG_DONTWAIT))
        return peeked == 0 || (peeked < 0 && errno == EAGAIN)
    }

    private static func bytes(_ scratch: UnsafeMutableRawBufferPointer, _ range: Range<Int>) -> ArraySlice<UInt8> {
        ArraySlice(UnsafeRawBufferPointer(rebasing: scratch[range]))
    }

    /// A read that returned 0 (the peer's FIN) or failed.
    private func endOfRead(_ result: Int, _ direction: inout RelayDirection, towardUpstream: Bool, call: String) -> PumpFailure? {
        if result == 0 {
            direction.readEnded()
            return nil
        }
        let error = errno
        if error == EAGAIN {
            direction.readWouldBlock()
            return nil
        }
        return PumpFailure(errno: error, detail: SystemCallError(call, errno: error).described(by: towardUpstream ? "client" : "upstream"))
    }

    private func writeFailure(towardUpstream: Bool, call: String) -> PumpFailure {
        let error = errno
        return PumpFailure(errno: error, detail: SystemCallError(call, errno: error).described(by: towardUpstream ? "upstream" : "client"))
    }

    private func noteRead(_ count: Int, towardUpstream: Bool, moved: inout Bool) {
        if towardUpstream { record.bytesFromClient += count } else { record.bytesFromServer += count }
        moved = true
    }
}
