import Testing
import TailgateTOML

/// The value model: kinds, accessors, order and rendering.
struct TOMLValueTests {
    @Test func scalarKindsAndAccessorsMatch() throws {
        let root = try TOMLParser.parse("""
            s = "text"
            i = 0xff
            f = 6.5e-1
            b = true
            d = 1979-05-27T00:32:00.5-07:00
            a = [1, "mixed"]
            t = {}
            """)
        #expect(root["s"]?.string == "text")
        #expect(root["i"]?.integer == 255)
        #expect(root["f"]?.float == 0.65)
        #expect(root["b"]?.bool == true)
        #expect(root["d"]?.dateTime?.offset == -420)
        #expect(root["a"]?.array?.count == 2)
        #expect(root["t"]?.table?.entries.isEmpty == true)
        #expect(root["i"]?.string == nil)
        #expect(root["s"]?.integer == nil)
        #expect(root.keys.map { root[$0]?.typeName ?? "" } == [
            "string", "integer", "float", "boolean", "datetime", "array", "table",
        ])
    }

    @Test func keysKeepDocumentOrder() throws {
        let root = try TOMLParser.parse("zeta = 1\nalpha = 2\n[middle]\n[beta]\n")
        #expect(root.keys == ["zeta", "alpha", "middle", "beta"])
    }

    @Test func dateTimesRenderInTOMLForm() throws {
        let root = try TOMLParser.parse("""
            odt = 1979-05-27 07:32:00z
            neg = 1979-05-27T00:32:00.999000-07:30
            ldt = 1979-05-27T07:32:00
            ld = 1979-05-27
            lt = 00:32:00.000001
            """)
        #expect(root["odt"]?.dateTime?.description == "1979-05-27T07:32:00Z")
        #expect(root["neg"]?.dateTime?.description == "1979-05-27T00:32:00.999-07:30")
        #expect(root["ldt"]?.dateTime?.description == "1979-05-27T07:32:00")
        #expect(root["ld"]?.dateTime?.description == "1979-05-27")
        #expect(root["ld"]?.dateTime?.time == nil)
        #expect(root["lt"]?.dateTime?.description == "00:32:00.000001")
        #expect(root["lt"]?.dateTime?.time?.nanosecond == 1_000)
        #expect(root["lt"]?.dateTime?.date == nil)
    }

    @Test func stringInputAndByteInputParseTheSame() throws {
        let text = "name = \"tailgate\"\nports = [80, 443]\n"
        let fromString = try TOMLParser.parse(text)
        let fromBytes = try TOMLParser.parse(bytes: Array(text.utf8))
        #expect(fromString.keys == fromBytes.keys)
        #expect(fromString["ports"]?.array?.compactMap(\.integer) == fromBytes["ports"]?.array?.compactMap(\.integer))
    }

    @Test func positionsOrderAndRenderAsLineColon() {
        let early = SourcePosition(line: 2, column: 9)
        let late = SourcePosition(line: 3, column: 1)
        #expect(early < late)
        #expect(early.description == "2:9")
    }

    @Test func largeDocumentsParseInLinearTime() throws {
        // 1,000 keys, a 10,000-element array on one line and a long string:
        // quadratic indexing would make this test visibly slow.
        var text = ""
        for index in 0..<1_000 { text += "key\(index) = \"value \(index)\"\n" }
        text += "numbers = [" + (0..<10_000).map(String.init).joined(separator: ", ") + "]\n"
        text += "long = \"" + String(repeating: "é", count: 100_000) + "\"\n"
        let root = try TOMLParser.parse(text)
        #expect(root.keys.count == 1_002)
        #expect(root["key999"]?.string == "value 999")
        #expect(root["numbers"]?.array?.last?.integer == 9_999)
        // "numbers = [" is 11 columns; each earlier element adds its digits and ", ".
        let expectedColumn = (0..<9_999).reduce(12) { column, number in column + String(number).count + 2 }
        #expect(root["numbers"]?.array?.last?.position.column == expectedColumn)
        #expect(root["long"]?.string?.unicodeScalars.count == 100_000)
    }

    @Test func conformanceComparisonNoticesDifferences() throws {
        let expected = TaggedJSON.table(["a": .scalar(type: "float", value: "nan"), "d": .scalar(type: "datetime", value: "1979-05-27T07:32:00.500Z")])
        let same = try TaggedJSON(TOMLParser.parse("a = -nan\nd = 1979-05-27t07:32:00.5+00:00"))
        #expect(expected.difference(from: same) == nil)
        let different = try TaggedJSON(TOMLParser.parse("a = nan\nd = 1979-05-27T07:32:00.6Z"))
        #expect(expected.difference(from: different) != nil)
        let wrongType = try TaggedJSON(TOMLParser.parse("a = 1\nd = 1979-05-27T07:32:00.5Z"))
        #expect(expected.difference(from: wrongType) != nil)
    }
}
