import FuzzSupport
import TailgateWire

/// What libFuzzer runs on each input: the input is the body of a CrowdSec Local API answer (or any JSON).
///
/// The reader never crashes, answers the same with whitespace after the value, and a document it accepts
/// read as a decisions stream gives decisions whose durations are sane (Go duration text read or refused).
func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(FuzzerDriver.bytes(data, size))
    let parsed = try? JSONValue.parse(bytes)
    let padded = try? JSONValue.parse(bytes + Array(" \n\t".utf8))
    Invariant.check(parsed == padded, "trailing whitespace changed the answer")
    if parsed != nil, let decisions = try? CrowdSecDecisions.parse(bytes) {
        for decision in decisions.new + decisions.deleted {
            if let duration = decision.duration {
                Invariant.check(abs(duration.components.seconds) < 20_000_000_000, "duration \(duration)")
            }
        }
    }
    return 0
}

FuzzerDriver.run(fuzzJSON)
