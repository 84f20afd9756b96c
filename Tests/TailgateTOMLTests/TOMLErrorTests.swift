import Testing
import TailgateTOML

/// Common mistakes are reported with a clear message at the offending spot.
struct TOMLErrorTests {
    private func rejection(of text: String) -> TOMLParseError? {
        rejection(of: Array(text.utf8))
    }

    private func rejection(of bytes: [UInt8]) -> TOMLParseError? {
        do {
            _ = try TOMLParser.parse(bytes: bytes)
            return nil
        } catch {
            return error
        }
    }

    private func at(_ line: Int, _ column: Int) -> SourcePosition {
        SourcePosition(line: line, column: column)
    }

    @Test func missingEqualsSignPointsAtWhatFollowsTheKey() throws {
        let error = try #require(rejection(of: "name = 'x'\nport 8080\n"))
        #expect(error.position == at(2, 6))
        #expect(error.message == "expected '=' after key 'port', found '8'")
        #expect(error.description == "2:6: expected '=' after key 'port', found '8'")
    }

    @Test func unterminatedStringPointsAtItsOpeningQuote() throws {
        let basic = try #require(rejection(of: "a = 1\nname = \"tailgate\nb = 2\n"))
        #expect(basic.position == at(2, 8))
        #expect(basic.message.hasPrefix("unterminated string"))
        let multiline = try #require(rejection(of: "text = '''\nnever closed\n"))
        #expect(multiline.position == at(1, 8))
        #expect(multiline.message == "unterminated string: missing closing '''")
    }

    @Test func duplicateKeyPointsAtTheSecondOccurrence() throws {
        let error = try #require(rejection(of: "bind = \"a\"\nport = 1\nbind = \"b\"\n"))
        #expect(error.position == at(3, 1))
        #expect(error.message == "duplicate key 'bind' (first defined at 1:1)")
        let dotted = try #require(rejection(of: "a.b = 1\na . b = 2\n"))
        #expect(dotted.position == at(2, 5))
        #expect(dotted.message == "duplicate key 'a.b' (first defined at 1:3)")
        let inline = try #require(rejection(of: "t = { x = 1, x = 2 }"))
        #expect(inline.position == at(1, 14))
    }

    @Test func redefiningATableIsReportedAtTheSecondHeader() throws {
        let error = try #require(rejection(of: "[server]\nbind = 1\n\n[server]\n"))
        #expect(error.position == at(4, 1))
        #expect(error.message == "duplicate table [server] (first defined at 1:1)")
        let overDotted = try #require(rejection(of: "[a]\nb.c = 1\n[a.b]\n"))
        #expect(overDotted.position == at(3, 1))
        #expect(overDotted.message == "cannot define table [a.b] with a header: it was already created by dotted keys at 2:1")
        let overValue = try #require(rejection(of: "a = 1\n[a.b]\n"))
        #expect(overValue.position == at(2, 2))
        #expect(overValue.message == "cannot use 'a' as a table: it is already an integer (defined at 1:1)")
        let extendInline = try #require(rejection(of: "a = { b = 1 }\na.c = 2\n"))
        #expect(extendInline.position == at(2, 1))
        #expect(extendInline.message.contains("inline table"))
    }

    @Test func badEscapePointsAtTheBackslash() throws {
        let error = try #require(rejection(of: #"s = "a\qb""#))
        #expect(error.position == at(1, 7))
        #expect(error.message == #"invalid escape sequence '\q'"#)
        let short = try #require(rejection(of: #"s = "\u12""#))
        #expect(short.position == at(1, 6))
        let surrogate = try #require(rejection(of: #"s = "\uD800""#))
        #expect(surrogate.message == "escape sequence U+D800 is not a Unicode scalar value")
    }

    @Test func invalidNumbersNameTheTokenAndTheRule() throws {
        let leadingZero = try #require(rejection(of: "n = 0123"))
        #expect(leadingZero.position == at(1, 5))
        #expect(leadingZero.message == "invalid number '0123': leading zeros are not allowed")
        let underscore = try #require(rejection(of: "n = 1__000"))
        #expect(underscore.message == "invalid number '1__000': an underscore must be between two digits")
        let overflow = try #require(rejection(of: "n = 9223372036854775808"))
        #expect(overflow.message == "invalid number '9223372036854775808': does not fit in a 64-bit signed integer")
        let trailingDot = try #require(rejection(of: "[t]\nf = -1."))
        #expect(trailingDot.position == at(2, 5))
        #expect(trailingDot.message == "invalid number '-1.': a float needs a digit after the '.'")
        let leadingDot = try #require(rejection(of: "f = .5"))
        #expect(leadingDot.message == "invalid number '.5': a float needs a digit before the '.'")
    }

    @Test func invalidUTF8IsReportedAtTheFirstBadByte() throws {
        let bytes = Array("a = \"ok\"\nb = \"é".utf8) + [0xFF] + Array("\"\n".utf8)
        let error = try #require(rejection(of: bytes))
        #expect(error.position == at(2, 7))
        #expect(error.message == "invalid UTF-8: malformed sequence starting with byte 0xFF")
        let surrogate = try #require(rejection(of: Array("s = '".utf8) + [0xED, 0xA0, 0x80, 0x27]))
        #expect(surrogate.position == at(1, 6))
        let truncated = try #require(rejection(of: Array("s = 'x".utf8) + [0xE2, 0x82]))
        #expect(truncated.position == at(1, 7))
    }

    @Test func impossibleDatesPointAtTheBadField() throws {
        let error = try #require(rejection(of: "d = 2023-02-29"))
        #expect(error.position == at(1, 13))
        #expect(error.message == "invalid date: day 29 is not between 01 and 28 for 2023-02")
        let hour = try #require(rejection(of: "t = 24:00:00"))
        #expect(hour.message == "invalid time: hour 24 is not between 00 and 23")
        let noSeconds = try #require(rejection(of: "t = 1979-05-27T07:32Z"))
        #expect(noSeconds.position == at(1, 21))
        let offsetTime = try #require(rejection(of: "t = 07:32:00+01:00"))
        #expect(offsetTime.position == at(1, 13))
        #expect(offsetTime.message.hasPrefix("a local time cannot have a UTC offset"))
    }

    @Test func strayTextAfterAValueIsRejected() throws {
        let error = try #require(rejection(of: "a = 1 2"))
        #expect(error.position == at(1, 7))
        #expect(error.message == "expected end of line after value, found '2'")
        let header = try #require(rejection(of: "[a] b = 1"))
        #expect(header.message == "expected end of line after table header, found 'b'")
    }

    @Test func unquotedStringsAreExplained() throws {
        let error = try #require(rejection(of: "mode = fast"))
        #expect(error.position == at(1, 8))
        #expect(error.message.hasPrefix("invalid value 'fast' (strings must be quoted"))
    }

    @Test func controlCharactersAreNamedByCodePoint() throws {
        let error = try #require(rejection(of: "s = \"a\u{7}b\""))
        #expect(error.position == at(1, 7))
        #expect(error.message == "control character U+0007 is not allowed in a string")
        let comment = try #require(rejection(of: "# bell \u{7}\n"))
        #expect(comment.message == "control character U+0007 is not allowed in a comment")
    }

    @Test func inlineTablesMustStayOnOneLine() throws {
        let error = try #require(rejection(of: "t = { a = 1,\n b = 2 }"))
        #expect(error.position == at(1, 13))
        let trailingComma = try #require(rejection(of: "t = { a = 1, }"))
        #expect(trailingComma.message == "a trailing comma is not allowed in an inline table")
    }

    @Test func arraysOfTablesCannotExtendStaticArrays() throws {
        let error = try #require(rejection(of: "fruit = []\n[[fruit]]\n"))
        #expect(error.position == at(2, 1))
        #expect(error.message.hasPrefix("cannot define array of tables [[fruit]]: 'fruit' is already an array"))
    }

    @Test func deepNestingIsRejectedInsteadOfExhaustingTheStack() throws {
        let error = try #require(rejection(of: "a = " + String(repeating: "[", count: 10_000)))
        #expect(error.message.contains("nested more than"))
    }
}
