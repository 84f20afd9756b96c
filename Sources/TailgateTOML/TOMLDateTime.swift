/// A TOML date-time value: an offset date-time, a local date-time, a local
/// date, or a local time, depending on which parts are present.
public struct TOMLDateTime: Sendable, Hashable, CustomStringConvertible {
    /// A calendar date (proleptic Gregorian), for example `1979-05-27`.
    public struct LocalDate: Sendable, Hashable {
        /// The year, 0...9999.
        public var year: Int
        /// The month, 1...12.
        public var month: Int
        /// The day of the month, 1...31.
        public var day: Int

        /// Creates a date from its components; no validation is done.
        public init(year: Int, month: Int, day: Int) {
            self.year = year
            self.month = month
            self.day = day
        }
    }

    /// A time of day, for example `07:32:00.999`.
    public struct LocalTime: Sendable, Hashable {
        /// The hour, 0...23.
        public var hour: Int
        /// The minute, 0...59.
        public var minute: Int
        /// The second, 0...60 (60 only for a leap second).
        public var second: Int
        /// The fractional second in nanoseconds; digits past the ninth are truncated.
        public var nanosecond: Int

        /// Creates a time from its components; no validation is done.
        public init(hour: Int, minute: Int, second: Int, nanosecond: Int = 0) {
            self.hour = hour
            self.minute = minute
            self.second = second
            self.nanosecond = nanosecond
        }
    }

    /// The date part; nil for a local time.
    public var date: LocalDate?
    /// The time part; nil for a local date.
    public var time: LocalTime?
    /// The UTC offset in minutes east of UTC (`Z` is 0); nil for local values.
    public var offset: Int?

    /// Creates a date-time. An offset only makes sense with both a date and a time.
    public init(date: LocalDate?, time: LocalTime?, offset: Int? = nil) {
        self.date = date
        self.time = time
        self.offset = offset
    }

    /// The value in TOML / RFC 3339 form, for example `1979-05-27T07:32:00Z`,
    /// `1979-05-27T00:32:00.5-07:00`, `1979-05-27` or `07:32:00`. Trailing zeros
    /// of the fractional second are dropped.
    public var description: String {
        var text = ""
        if let date {
            text += pad(date.year, 4) + "-" + pad(date.month, 2) + "-" + pad(date.day, 2)
        }
        if let time {
            if date != nil { text += "T" }
            text += pad(time.hour, 2) + ":" + pad(time.minute, 2) + ":" + pad(time.second, 2)
            if time.nanosecond > 0 {
                var digits = pad(time.nanosecond, 9)
                while digits.last == "0" { digits.removeLast() }
                text += "." + digits
            }
        }
        if let offset {
            if offset == 0 {
                text += "Z"
            } else {
                let magnitude = abs(offset)
                text += (offset < 0 ? "-" : "+") + pad(magnitude / 60, 2) + ":" + pad(magnitude % 60, 2)
            }
        }
        return text
    }

    private func pad(_ number: Int, _ width: Int) -> String {
        let digits = String(number)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
