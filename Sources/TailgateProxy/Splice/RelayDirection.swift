/// One direction of a relayed connection, from a source socket to a destination socket, as a pure state
/// machine: what epoll said about the two sockets, what is in flight between them, and how far the stream
/// has got. The I/O layer asks `nextStep`, performs the step with one or two system calls, and reports
/// the result; nothing here touches a descriptor, so every order of events is tested without sockets.
///
/// Small exchanges are copied through the thread's scratch buffer (one recv, one send: cheaper than two
/// splices for a few hundred bytes); once a read fills the buffer, the direction carries bulk and switches
/// to splice(2) through a pipe, where the bytes stay in the kernel (HAProxy's splice-auto idea).
struct RelayDirection {
    /// The source's side of the stream. Edge-triggered epoll reports a change once, so what it said is kept
    /// until a read finds out otherwise.
    enum Source: Equatable {
        /// Nothing to read until epoll reports more; `peerClosed`: its FIN was reported, so a read that
        /// comes back short or empty ends the stream.
        case drained(peerClosed: Bool)
        /// Epoll reported input that a read has not used up yet.
        case readable(peerClosed: Bool)
        /// The source's FIN has been read: nothing more will come.
        case ended
        /// The FIN has been passed on to the destination (or needs no passing on): this direction is done.
        case finished
    }

    /// Bytes read from the source and not yet written to the destination.
    enum InFlight {
        case none
        /// What a partial copy-mode write left over (at most one scratch buffer).
        case held([UInt8])
        /// Bytes in a pipe; a pipe is held only while a pump runs or bytes are in it.
        case piped(SplicePipe, pending: Int)
    }

    /// What the I/O layer does next for this direction.
    enum Step: Equatable {
        /// Write the held bytes.
        case flushHeld
        /// Splice `count` bytes out of the pipe to the destination.
        case flushPipe(count: Int)
        /// recv into the scratch buffer and send what came (`copied` or `readEnded`…).
        case copy
        /// Take a pipe for bulk (`tookPipe`, or `noPipe` when none can be had).
        case takePipe
        /// Splice up to `room` bytes from the source into the pipe and out to the destination (`spliced`).
        case splice(room: Int)
        /// Give the empty pipe back (`releasedPipe`).
        case releasePipe
        /// shutdown(destination, SHUT_WR): pass the FIN on (`passedFIN`).
        case passFIN
        /// Nothing more until an event.
        case idle
        /// The pump used its share of this turn with input left: come back after the other connections.
        case yield
    }

    /// Reads per pump before yielding, so that one busy connection cannot starve the others.
    static let roundsPerPump = 4

    private(set) var source = Source.drained(peerClosed: false)
    private(set) var inFlight = InFlight.none
    /// The destination's send buffer is full (or it is still connecting): wait until it is writable.
    private(set) var destinationFull = false
    /// Carries bulk: reads go through a pipe with splice(2) instead of the scratch buffer.
    private(set) var spliced = false
    /// Reads done in the current pump.
    private var rounds = 0
    /// The current pump stopped at its round limit with input left.
    private(set) var yielded = false

    /// The destination is not writable yet (an upstream still connecting).
    mutating func awaitDestination() {
        destinationFull = true
    }

    var isFinished: Bool { source == .finished }

    /// Bytes in a pipe not yet written out (a pipe with bytes in it is closed, not reused, at the end).
    var pipe: (pipe: SplicePipe, pending: Int)? {
        if case .piped(let pipe, let pending) = inFlight { return (pipe, pending) }
        return nil
    }

    // MARK: - Events from epoll

    /// The source socket reported `input` (EPOLLIN, or a hang-up or error, which a read then reports) and
    /// perhaps `peerClosed` (EPOLLRDHUP or EPOLLHUP).
    mutating func sourceReported(input: Bool, peerClosed: Bool) {
        switch source {
        case .drained(let closed):
            source = input ? .readable(peerClosed: closed || peerClosed) : .drained(peerClosed: closed || peerClosed)
        case .readable(let closed):
            source = .readable(peerClosed: closed || peerClosed)
        case .ended, .finished:
            break
        }
    }

    /// The destination became writable (or reported an error, which the next write returns).
    mutating func destinationWritable() {
        destinationFull = false
    }

    // MARK: - The pump

    /// Starts a pump: the round count begins again.
    mutating func beginPump() {
        rounds = 0
        yielded = false
    }

    /// The next step; `otherFinished`: the opposite direction is done, so the close that follows sends
    /// this one's FIN and no shutdown is needed.
    mutating func nextStep(otherFinished: Bool) -> Step {
        if !destinationFull {
            switch inFlight {
            case .held: return .flushHeld
            case .piped(_, let pending) where pending > 0: return .flushPipe(count: pending)
            default: break
            }
        }
        switch source {
        case .readable where !destinationFull:
            guard rounds < Self.roundsPerPump else {
                let step = releaseOr(.yield)
                yielded = step == .yield
                return step
            }
            guard spliced else { return .copy }
            guard case .piped(_, let pending) = inFlight else { return .takePipe }
            let room = SplicePipePool.chunk - pending
            // A full pipe waits for the destination: asking splice for 0 bytes would read as end of stream.
            guard room > 0 else {
                destinationFull = true
                return .idle
            }
            return .splice(room: room)
        case .ended where isEmpty:
            if otherFinished {
                source = .finished
                return releaseOr(.idle)
            }
            return releaseOr(.passFIN)
        default:
            return releaseOr(.idle)
        }
    }

    private var isEmpty: Bool {
        switch inFlight {
        case .none: return true
        case .held: return false
        case .piped(_, let pending): return pending == 0
        }
    }

    /// An empty pipe goes back to the pool before the pump stops (or the stream ends).
    private func releaseOr(_ step: Step) -> Step {
        if case .piped(_, 0) = inFlight { return .releasePipe }
        return step
    }

    // MARK: - Results of the steps

    /// A recv brought `count` bytes (> 0) into a buffer of `capacity`.
    mutating func read(_ count: Int, capacity: Int) {
        // TCP's recv returns less than asked only with the receive queue empty: nothing more until the
        // next edge. If the peer's FIN had already arrived, this was the last of it (saves the recv of 0).
        guard count < capacity, case .readable(let peerClosed) = source else { return }
        source = peerClosed ? .ended : .drained(peerClosed: false)
    }

    /// A copy step read `received` bytes (> 0) into a buffer of `capacity` and wrote all but `leftover`.
    mutating func copied(received: Int, capacity: Int, leftover: ArraySlice<UInt8>) {
        rounds += 1
        read(received, capacity: capacity)
        if received >= capacity {
            spliced = true  // a full buffer: bulk, from now on through a pipe
        }
        if !leftover.isEmpty {
            inFlight = .held(Array(leftover))
            destinationFull = true
        }
    }

    /// A splice step moved `received` bytes (> 0) into the pipe and `sent` of what the pipe held out of it.
    /// A short splice says nothing about the socket (the pipe may have run out of slots): only EAGAIN ends
    /// its readiness.
    mutating func spliced(received: Int, sent: Int) {
        rounds += 1
        guard case .piped(let pipe, let pending) = inFlight else { return }
        let left = pending + received - sent
        inFlight = .piped(pipe, pending: left)
        if left > 0 { destinationFull = true }
    }

    /// The read found nothing (EAGAIN): wait for the next edge.
    mutating func readWouldBlock() {
        if case .readable(let peerClosed) = source { source = .drained(peerClosed: peerClosed) }
    }

    /// The read returned 0: the source's FIN.
    mutating func readEnded() {
        if source != .finished { source = .ended }
    }

    /// `sent` of the held bytes went out; the rest waits for the destination.
    mutating func flushedHeld(sent: Int) {
        guard case .held(let bytes) = inFlight else { return }
        if sent >= bytes.count {
            inFlight = .none
        } else {
            inFlight = .held(Array(bytes[sent...]))
            destinationFull = true
        }
    }

    /// `sent` of the pipe's bytes went out; the rest waits for the destination.
    mutating func flushedPipe(sent: Int) {
        guard case .piped(let pipe, let pending) = inFlight else { return }
        inFlight = .piped(pipe, pending: pending - sent)
        if pending - sent > 0 { destinationFull = true }
    }

    mutating func tookPipe(_ pipe: SplicePipe) {
        inFlight = .piped(pipe, pending: 0)
    }

    /// The empty pipe went back to the pool.
    mutating func releasedPipe() {
        if case .piped(_, 0) = inFlight { inFlight = .none }
    }

    /// The FIN went out (or the destination had already gone; the close reports nothing more).
    mutating func passedFIN() {
        source = .finished
    }

    /// The connection ends without this direction's end of stream (an http response was delivered and
    /// the client had nothing more queued): nothing more is read, what is in flight is dropped at the close.
    mutating func abandon() {
        source = .finished
    }
}
