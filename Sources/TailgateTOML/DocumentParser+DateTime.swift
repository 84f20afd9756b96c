/// Offset date-times, local date-times, local dates and local times
/// (TOML 1.0 / RFC 3339 with the space separator and lowercase letters allowed).
extension DocumentParser {
    /// Four digits and a '-': the start of a date.
    var looksLikeDate: Bool {
        (0..<4).allSatisfy { scanner.peek($0).map(ASCII.isDigit) ?? false } && scanner.peek(is: ASCII.minus, 4)
    }

    /// Two digits and a ':': the start of a time.
    var looksLikeTime: Bool {
        (0..<2).allSatisfy { scanner.peek($0).map(ASCII.isDigit) ?? false } && scanner.peek(is: ASCII.colon, 2)
    }

    /// Parses a date, optionally followed by a time and an offset.
    mutating func parseDateTime() throws(TOMLParseError) -> TOMLDateTime {
        let date = try parseDate()
        let hasTime: Bool
        switch scanner.peek() {
        case UInt8(ascii: "T"), UInt8(ascii: "t"):
            hasTime = true
        case ASCII.space:
            // "1979-05-27 07:32:00": a space separates date and time only if a time follows.
            hasTime = (1...2).allSatisfy { scanner.peek($0).map(ASCII.isDigit) ?? false } && scanner.peek(is: ASCII.colon, 3)
        default:
            hasTime = false
        }
        guard hasTime else { return TOMLDateTime(date: date, time: nil) }
        scanner.advance()
        let time = try parseTime()
        return TOMLDateTime(date: date, time: time, offset: try parseOffset())
    }

    private mutating func parseDate() throws(TOMLParseError) -> TOMLDateTime.LocalDate {
        let year = try readDigits(4, "year")
        try expect(ASCII.minus, "'-' after the year")
        let monthStart = scanner.position
        let month = try readDigits(2, "month")
        try expect(ASCII.minus, "'-' after the month")
        let dayStart = scanner.position
        let day = try readDigits(2, "day")
        guard (1...12).contains(month) else {
            throw TOMLParseError(message: "invalid date: month \(month) is not between 01 and 12", position: monthStart)
        }
        let length = daysInMonth(month, year: year)
        guard (1...length).contains(day) else {
            throw TOMLParseError(
                message: "invalid date: day \(day) is not between 01 and \(length) for \(pad(year, 4))-\(pad(month, 2))",
                position: dayStart
            )
        }
        return TOMLDateTime.LocalDate(year: year, month: month, day: day)
    }

    /// Parses `HH:MM:SS[.fraction]`; seconds are required in TOML 1.0.
    mutating func parseTime() throws(TOMLParseError) -> TOMLDateTime.LocalTime {
        let hourStart = scanner.position
        let hour = try readDigits(2, "hour")
        try expect(ASCII.colon, "':' after the hour")
        let minuteStart = scanner.position
        let minute = try readDigits(2, "minute")
        try expect(ASCII.colon, "':' after the minute (seconds are required)")
        let secondStart = scanner.position
        let second = try readDigits(2, "second")
        var nanosecond = 0
        if scanner.consume(ASCII.dot) {
            guard scanner.peek().map(ASCII.isDigit) ?? false else {
                throw scanner.error("invalid time: expected digits after '.', found \(scanner.describeCurrent())")
            }
            var scale = 100_000_000
            while let byte = scanner.peek(), ASCII.isDigit(byte) {
                // Digits past nanoseconds are read and dropped.
                nanosecond += Int(byte - 0x30) * scale
                scale /= 10
                scanner.advance()
            }
        }
        try check(hour, in: 0...23, "hour", at: hourStart)
        try check(minute, in: 0...59, "minute", at: minuteStart)
        try check(second, in: 0...60, "second", at: secondStart)
        return TOMLDateTime.LocalTime(hour: hour, minute: minute, second: second, nanosecond: nanosecond)
    }

    /// Parses an optional `Z` or `±HH:MM` after a date and time.
    private mutating func parseOffset() throws(TOMLParseError) -> Int? {
        guard let byte = scanner.peek() else { return nil }
        switch byte {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            scanner.advance()
            return 0
        case ASCII.plus, ASCII.minus:
            scanner.advance()
            let hourStart = scanner.position
            let hours = try readDigits(2, "offset hour")
            try expect(ASCII.colon, "':' in the offset")
            let minuteStart = scanner.position
            let minutes = try readDigits(2, "offset minute")
            try check(hours, in: 0...23, "offset hour", at: hourStart)
            try check(minutes, in: 0...59, "offset minute", at: minuteStart)
            let total = hours * 60 + minutes
            return byte == ASCII.minus ? -total : total
        default:
            return nil
        }
    }

    private mutating func readDigits(_ count: Int, _ field: String) throws(TOMLParseError) -> Int {
        var value = 0
        for _ in 0..<count {
            guard let byte = scanner.peek(), ASCII.isDigit(byte) else {
                throw scanner.error("invalid date-time: expected a \(count)-digit \(field), found \(scanner.describeCurrent())")
            }
            value = value * 10 + Int(byte - 0x30)
            scanner.advance()
        }
        return value
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(TOMLParseError) {
        guard scanner.consume(byte) else {
            throw scanner.error("invalid date-time: expected \(what), found \(scanner.describeCurrent())")
        }
    }

    private func check(_ value: Int, in range: ClosedRange<Int>, _ field: String, at position: SourcePosition) throws(TOMLParseError) {
        guard range.contains(value) else {
            throw TOMLParseError(
                message: "invalid time: \(field) \(pad(value, 2)) is not between \(pad(range.lowerBound, 2)) and \(pad(range.upperBound, 2))",
                position: position
            )
        }
    }

    private func daysInMonth(_ month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
