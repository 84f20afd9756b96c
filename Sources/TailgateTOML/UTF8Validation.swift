/// Checks that `bytes` is well-formed UTF-8 (no overlong forms, no surrogates,
/// nothing above U+10FFFF) and reports the first bad byte with its position.
func validateUTF8(_ bytes: [UInt8]) throws(TOMLParseError) {
    var offset = 0
    var line = 1
    var column = 1
    while offset < bytes.count {
        let lead = bytes[offset]
        if lead < 0x80 {
            offset += 1
            if lead == ASCII.lineFeed {
                line += 1
                column = 1
            } else {
                column += 1
            }
            continue
        }
        // Number of continuation bytes and the allowed range of the first one.
        let continuation: Int
        var firstRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: continuation = 1
        case 0xE0: continuation = 2; firstRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: continuation = 2
        case 0xED: continuation = 2; firstRange = 0x80...0x9F
        case 0xF0: continuation = 3; firstRange = 0x90...0xBF
        case 0xF1...0xF3: continuation = 3
        case 0xF4: continuation = 3; firstRange = 0x80...0x8F
        default: continuation = 0
        }
        var valid = continuation > 0 && offset + continuation < bytes.count
        if valid {
            for index in 1...continuation {
                let range: ClosedRange<UInt8> = index == 1 ? firstRange : 0x80...0xBF
                if !range.contains(bytes[offset + index]) { valid = false }
            }
        }
        guard valid else {
            let hex = String(lead, radix: 16, uppercase: true)
            throw TOMLParseError(
                message: "invalid UTF-8: malformed sequence starting with byte 0x\(hex.count < 2 ? "0" : "")\(hex)",
                position: SourcePosition(line: line, column: column)
            )
        }
        offset += continuation + 1
        column += 1
    }
}
