import Testing
import TailgateTOML

/// Where keys, values and tables are reported to start.
struct TOMLPositionTests {
    private func at(_ line: Int, _ column: Int) -> SourcePosition {
        SourcePosition(line: line, column: column)
    }

    @Test func keysAndValuesCarryTheirLineAndColumn() throws {
        let root = try TOMLParser.parse("""
            title = "tailgate"
              answer=42
            owner.name . first = 'Tom'
            """)
        #expect(root.position == at(1, 1))
        #expect(root.entry("title")?.keyPosition == at(1, 1))
        #expect(root["title"]?.position == at(1, 9))
        #expect(root.entry("answer")?.keyPosition == at(2, 3))
        #expect(root["answer"]?.position == at(2, 10))
        let owner = try #require(root.entry("owner"))
        #expect(owner.keyPosition == at(3, 1))
        #expect(owner.value.position == at(3, 1))
        let name = try #require(owner.value.table?.entry("name"))
        #expect(name.keyPosition == at(3, 7))
        #expect(name.value.table?.entry("first")?.keyPosition == at(3, 14))
        #expect(name.value.table?["first"]?.position == at(3, 22))
    }

    @Test func columnsCountUnicodeScalarsNotBytes() throws {
        let root = try TOMLParser.parse(#"t = { "é" = "ü", x = "🙂", y = 1 }"#)
        let table = try #require(root["t"]?.table)
        #expect(table.position == at(1, 5))
        #expect(table.entry("é")?.keyPosition == at(1, 7))
        #expect(table["é"]?.position == at(1, 13))
        #expect(table.entry("x")?.keyPosition == at(1, 18))
        #expect(table["x"]?.position == at(1, 22))
        #expect(table.entry("y")?.keyPosition == at(1, 27))
        #expect(table["y"]?.position == at(1, 31))
    }

    @Test func arrayElementsCarryTheirOwnPositions() throws {
        let root = try TOMLParser.parse("""
            ports = [
              80,
              443, # https
              [1, 2],
              { host = "h" },
            ]
            """)
        let ports = try #require(root["ports"])
        #expect(ports.position == at(1, 9))
        let elements = try #require(ports.array)
        #expect(elements.map(\.position) == [at(2, 3), at(3, 3), at(4, 3), at(5, 3)])
        #expect(elements[2].array?.map(\.position) == [at(4, 4), at(4, 7)])
        #expect(elements[3].table?.entry("host")?.keyPosition == at(5, 5))
        #expect(elements[3].table?["host"]?.position == at(5, 12))
    }

    @Test func linesAfterMultilineStringsAreCountedCorrectly() throws {
        let root = try TOMLParser.parse("""
            a = \"\"\"
            line one
            line two\"\"\"
            b = '''
            raw'''
            c = \"\"\"one \\
                  two\"\"\"
            d = 4
            """)
        #expect(root["a"]?.string == "line one\nline two")
        #expect(root.entry("b")?.keyPosition == at(4, 1))
        #expect(root["b"]?.string == "raw")
        #expect(root["c"]?.position == at(6, 5))
        #expect(root["c"]?.string == "one two")
        #expect(root.entry("d")?.keyPosition == at(8, 1))
        #expect(root["d"]?.position == at(8, 5))
    }

    @Test func crlfLineEndingsCountAsOneLineBreak() throws {
        let root = try TOMLParser.parse("a = 1\r\nb = 'x'\r\n\r\n[t]\r\nc = \"\"\"\r\nx\r\ny\"\"\"\r\nd = 5\r\n")
        #expect(root.entry("b")?.keyPosition == at(2, 1))
        #expect(root["b"]?.position == at(2, 5))
        let table = try #require(root["t"]?.table)
        #expect(table.position == at(4, 1))
        #expect(table["c"]?.position == at(5, 5))
        #expect(table["c"]?.string == "x\ny")
        #expect(table.entry("d")?.keyPosition == at(8, 1))
    }

    @Test func tablesArePositionedAtTheirHeaderOrCreatingKey() throws {
        let root = try TOMLParser.parse("""
            [a.b]
            x = 1
            [[fruit]]
            name = "apple"
            [[fruit]]
            name = "banana"
            [a]
            y = 2
            """)
        let a = try #require(root.entry("a"))
        #expect(a.keyPosition == at(1, 2))
        // Created implicitly by [a.b], then defined by [a] on line 7.
        #expect(a.value.position == at(7, 1))
        #expect(a.value.table?["b"]?.position == at(1, 1))
        #expect(a.value.table?.entry("b")?.keyPosition == at(1, 4))
        let fruit = try #require(root["fruit"])
        #expect(fruit.position == at(3, 1))
        #expect(fruit.array?.map(\.position) == [at(3, 1), at(5, 1)])
        #expect(fruit.array?.compactMap { $0.table?.position } == [at(3, 1), at(5, 1)])
        #expect(fruit.array?.compactMap { $0.table?["name"]?.string } == ["apple", "banana"])
    }

    @Test func positionsStartAfterAByteOrderMark() throws {
        let root = try TOMLParser.parse(bytes: [0xEF, 0xBB, 0xBF] + Array("key = 1".utf8))
        #expect(root.entry("key")?.keyPosition == at(1, 1))
        #expect(root["key"]?.position == at(1, 7))
    }
}
