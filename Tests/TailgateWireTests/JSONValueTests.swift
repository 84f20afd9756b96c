import Testing
@testable import TailgateWire

/// The small JSON reader and CrowdSec's decisions stream read with it.
@Suite struct JSONValueTests {
    @Test func documentsParseAndBadOnesSayWhere() throws {
        let value = try JSONValue.parse(Array(#" {"a": [1, -2.5e3, true, false, null], "b": "x\"\u00e9\ud83d\ude00\n", "c": {}} "#.utf8))
        #expect(value["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(value["b"]?.stringValue == "x\"é😀\n")
        #expect(value["c"] == .object([]))
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"abc", "tru", "{} x", "\"\u{01}\"", String(repeating: "[", count: 100)] {
            #expect(throws: JSONValue.ParseError.self, "\(bad.debugDescription)") { try JSONValue.parse(Array(bad.utf8)) }
        }
    }

    @Test func crowdsecStreamsAndGoDurationsRead() throws {
        let body = #"{"deleted":[{"duration":"-9.538016ms","id":1,"origin":"cscli","scenario":"test","scope":"Ip","type":"ban","value":"198.18.0.2"}],"new":[{"duration":"1h59m59.06644435s","id":2,"origin":"cscli","scenario":"ssh-bf","scope":"Range","type":"ban","value":"203.0.113.0/24"}]}"#
        let decisions = try CrowdSecDecisions.parse(Array(body.utf8))
        #expect(decisions.new.map(\.value) == ["203.0.113.0/24"] && decisions.new[0].scope == "Range" && decisions.new[0].scenario == "ssh-bf")
        #expect(decisions.new[0].duration == .milliseconds(7_199_066))
        #expect(decisions.deleted.map(\.value) == ["198.18.0.2"])
        #expect(try CrowdSecDecisions.parse(Array(#"{"deleted":null,"new":null}"#.utf8)) == CrowdSecDecisions(new: [], deleted: []))
        #expect(CrowdSecDecisions.goDuration("4h") == .seconds(14_400))
        #expect(CrowdSecDecisions.goDuration("300ms") == .milliseconds(300))
        #expect(CrowdSecDecisions.goDuration("1m30s") == .seconds(90))
        for bad in ["", "h", "10x", "1.2.3s", "-"] { #expect(CrowdSecDecisions.goDuration(bad) == nil, "\(bad)") }
    }
}
