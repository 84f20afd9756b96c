import FuzzSupport

/// What libFuzzer runs on each input: the input is the first bytes of a connection.
///
/// An input starting like a PROXY header (CR or `P`, which no TLS record starts with) is read
/// as a listener that trusts its peer does: PROXY header first, then the ClientHello. The
/// decision for the whole input at once must be the decision for the same bytes in 2 or 3 chunks.
func fuzzClientHello(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzerDriver.bytes(data, size)
    let expectProxyHeader = size > 0 && (bytes[0] == 0x0D || bytes[0] == UInt8(ascii: "P"))
    let whole = Admission.decide(bytes, chunks: [0..<size], expectProxyHeader: expectProxyHeader)
    let plan = ChunkPlan(bytes)
    let chunked = Admission.decide(bytes, chunks: plan.chunks, expectProxyHeader: expectProxyHeader)
    Invariant.check(whole == chunked, "whole: \(whole); in chunks \(plan.chunks): \(chunked)")
    return 0
}

FuzzerDriver.run(fuzzClientHello)
