/// Parses operator-written durations such as `"5s"`, `"250ms"`, `"1h30m"`.
///
/// Units: `ms`, `s`, `m`, `h`, `d`. A bare number is refused: it is ambiguous.
public enum DurationParser {
    public enum Failure: Error, Equatable {
        case empty
        case missingUnit
        case unknownUnit(String)
        case missingNumber
        case overflow
    }

    public static func parse(_ text: String) throws(Failure) -> Duration {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw .empty }
        var index = 0
        var totalMilliseconds: Int64 = 0
        while index < bytes.count {
            var number: Int64 = 0
            let numberStart = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                let (times, overflow1) = number.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(Int64(bytes[index] - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else { throw .overflow }
                number = sum
                index += 1
            }
            guard index > numberStart else { throw .missingNumber }
            let unitStart = index
            while index < bytes.count, !(bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9")) {
                index += 1
            }
            guard index > unitStart else { throw .missingUnit }
            let unit = String(decoding: bytes[unitStart..<index], as: UTF8.self)
            let factor: Int64
            switch unit {
            case "ms": factor = 1
            case "s": factor = 1_000
            case "m": factor = 60_000
            case "h": factor = 3_600_000
            case "d": factor = 86_400_000
            default: throw .unknownUnit(unit)
            }
            let (part, overflow1) = number.multipliedReportingOverflow(by: factor)
            let (sum, overflow2) = totalMilliseconds.addingReportingOverflow(part)
            guard !overflow1, !overflow2, sum < Int64.max / 1_000_000 else { throw .overflow }
            totalMilliseconds = sum
        }
        return .milliseconds(totalMilliseconds)
    }
}

extension Duration {
    /// The duration in whole milliseconds.
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}
