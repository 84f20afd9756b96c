/// Integer and float syntax (TOML 1.0 "Integer" and "Float"), checked on the
/// bytes of one number token.
enum NumberSyntax {
    /// Why a token is not a valid number; the text completes "invalid number 'x': ...".
    struct Failure: Error {
        var reason: String
    }

    static func parse(_ token: ArraySlice<UInt8>) throws(Failure) -> TOMLValueKind {
        var body = token
        let sign = body.first.flatMap { $0 == ASCII.plus || $0 == ASCII.minus ? $0 : nil }
        if sign != nil { body = body.dropFirst() }
        let negative = sign == ASCII.minus

        if body.elementsEqual("inf".utf8) { return .float(negative ? -.infinity : .infinity) }
        if body.elementsEqual("nan".utf8) { return .float(.nan) }

        if body.count >= 2, body.first == UInt8(ascii: "0"), let radix = radix(of: body[body.startIndex + 1]) {
            guard sign == nil else {
                throw Failure(reason: "hexadecimal, octal and binary integers cannot have a sign")
            }
            let digits = try digitGroups(body.dropFirst(2), radix: radix)
            return .integer(try integer(digits, radix: radix, negative: false))
        }

        let isFloat = body.contains { $0 == ASCII.dot || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        if isFloat { return .float(try float(body, negative: negative)) }

        let digits = try decimalIntegerPart(body)
        return .integer(try integer(digits, radix: 10, negative: negative))
    }

    private static func radix(of byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "x"): 16
        case UInt8(ascii: "o"): 8
        case UInt8(ascii: "b"): 2
        default: nil
        }
    }

    /// Digits with single underscores between them; returns the digit values.
    private static func digitGroups(_ text: ArraySlice<UInt8>, radix: Int) throws(Failure) -> [Int] {
        guard !text.isEmpty else { throw Failure(reason: "expected digits") }
        var digits: [Int] = []
        var previousWasDigit = false
        for byte in text {
            if byte == ASCII.underscore {
                guard previousWasDigit else { throw Failure(reason: "an underscore must be between two digits") }
                previousWasDigit = false
                continue
            }
            guard let value = digitValue(byte), value < radix else {
                throw Failure(reason: "unexpected character '\(Character(Unicode.Scalar(byte)))'")
            }
            digits.append(value)
            previousWasDigit = true
        }
        guard previousWasDigit else { throw Failure(reason: "an underscore must be between two digits") }
        return digits
    }

    private static func digitValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x5A: Int(byte - 0x41 + 10)
        case 0x61...0x7A: Int(byte - 0x61 + 10)
        default: nil
        }
    }

    /// The integer part of a decimal integer or float: no leading zeros.
    private static func decimalIntegerPart(_ text: ArraySlice<UInt8>) throws(Failure) -> [Int] {
        let digits = try digitGroups(text, radix: 10)
        if digits.count > 1 && digits[0] == 0 { throw Failure(reason: "leading zeros are not allowed") }
        return digits
    }

    private static func integer(_ digits: [Int], radix: Int, negative: Bool) throws(Failure) -> Int64 {
        let limit = negative ? UInt64(Int64.max) + 1 : UInt64(Int64.max)
        var magnitude: UInt64 = 0
        for digit in digits {
            let (shifted, overflowA) = magnitude.multipliedReportingOverflow(by: UInt64(radix))
            let (sum, overflowB) = shifted.addingReportingOverflow(UInt64(digit))
            guard !overflowA, !overflowB, sum <= limit else {
                throw Failure(reason: "does not fit in a 64-bit signed integer")
            }
            magnitude = sum
        }
        return negative ? Int64(truncatingIfNeeded: 0 &- magnitude) : Int64(magnitude)
    }

    /// `int [. digits] [e [sign] digits]` with at least a fraction or an exponent.
    private static func float(_ body: ArraySlice<UInt8>, negative: Bool) throws(Failure) -> Double {
        let exponentIndex = body.firstIndex { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        let mantissa = body[..<(exponentIndex ?? body.endIndex)]
        let dotIndex = mantissa.firstIndex(of: ASCII.dot)
        let integerPart = mantissa[..<(dotIndex ?? mantissa.endIndex)]
        guard !integerPart.isEmpty else { throw Failure(reason: "a float needs a digit before the '.'") }

        var text = negative ? "-" : ""
        text += decimalText(try decimalIntegerPart(integerPart))
        if let dotIndex {
            let fraction = mantissa[(dotIndex + 1)...]
            guard !fraction.isEmpty else { throw Failure(reason: "a float needs a digit after the '.'") }
            text += "." + decimalText(try digitGroups(fraction, radix: 10))
        }
        if let exponentIndex {
            var exponent = body[(exponentIndex + 1)...]
            text += "e"
            if let first = exponent.first, first == ASCII.plus || first == ASCII.minus {
                text += first == ASCII.minus ? "-" : "+"
                exponent = exponent.dropFirst()
            }
            guard !exponent.isEmpty else { throw Failure(reason: "expected digits in the exponent") }
            text += decimalText(try digitGroups(exponent, radix: 10))
        }
        guard let value = Double(text), value.isFinite else {
            throw Failure(reason: "out of range for a 64-bit float")
        }
        return value
    }

    private static func decimalText(_ digits: [Int]) -> String {
        String(decoding: digits.map { UInt8(0x30 + $0) }, as: UTF8.self)
    }
}

extension DocumentParser {
    /// Parses an integer or float token starting at the cursor.
    mutating func parseNumber() throws(TOMLParseError) -> TOMLValueKind {
        let start = scanner.position
        let begin = scanner.offset
        while let byte = scanner.peek(), ASCII.isBareKey(byte) || byte == ASCII.plus || byte == ASCII.dot || byte == ASCII.colon {
            scanner.advance()
        }
        let token = scanner.bytes[begin..<scanner.offset]
        do {
            return try NumberSyntax.parse(token)
        } catch {
            let text = String(decoding: token, as: UTF8.self)
            throw TOMLParseError(message: "invalid number '\(text)': \(error.reason)", position: start)
        }
    }
}
