import FuzzSupport
import NIOCore
import TailgateWire

/// What libFuzzer runs on each input: the input is the first bytes a trusted peer sends.
///
/// Decodes them as the proxy does, at once and in 2 or 3 chunks (same result); a decoded
/// header is written again with ``ProxyHeaderEncoder`` and must decode to what the encoder
/// promises to keep of it.
func fuzzProxyHeader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzerDriver.bytes(data, size)
    let decoder = ProxyHeaderDecoder()
    let whole = ProxyHeaderCheck.decode(bytes, chunks: [0..<size], decoder: decoder)
    let plan = ChunkPlan(bytes)
    let chunked = ProxyHeaderCheck.decode(bytes, chunks: plan.chunks, decoder: decoder)
    Invariant.check(whole == chunked, "whole: \(whole); in chunks \(plan.chunks): \(chunked)")
    if case .header(let header, let length) = whole {
        ProxyHeaderCheck.checkShape(header, length: length, decoder: decoder)
        ProxyHeaderCheck.checkRoundTrip(header, decoder: decoder)
    }
    return 0
}

FuzzerDriver.run(fuzzProxyHeader)
