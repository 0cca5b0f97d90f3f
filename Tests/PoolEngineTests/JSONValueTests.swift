import Testing

@testable import PoolEngine

@Suite("JSON text for the control protocol")
struct JSONValueTests {
    @Test("values parse and serialize back, with sorted keys and escapes")
    func roundTrip() throws {
        let text = #"{"b":[1,2.5,-3,true,false,null],"a":"line\nbreak \"quoted\" \\ tab\t é","c":{}}"#
        let value = try JSONValue.parse(text)
        #expect(value["a"]?.string == "line\nbreak \"quoted\" \\ tab\t é")
        #expect(value["b"]?.array?.count == 6)
        #expect(value["b"]?.array?[1].number == 2.5)
        #expect(value["b"]?.array?[2].integer == -3)
        #expect(value["c"]?.object?.isEmpty == true)
        #expect(value.serialized == #"{"a":"line\nbreak \"quoted\" \\ tab\t é","b":[1,2.5,-3,true,false,null],"c":{}}"#)
        #expect(try JSONValue.parse(value.serialized) == value)
        #expect(try JSONValue.parse(#""\u0041\u00e9""#) == .string("Aé"))
    }

    @Test("malformed text is refused with the byte offset", arguments: [
        ("{", 1), ("{\"a\" 1}", 5), ("[1,]", 3), ("tru", 0), ("\"open", 5), ("{} x", 3), ("1x", 1), ("", 0),
    ])
    func malformed(text: String, offset: Int) {
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(text) }
        do {
            _ = try JSONValue.parse(text)
        } catch let error as JSONSyntaxError {
            #expect(error.offset == offset, "\(text): \(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("nesting deeper than the limit is refused instead of exhausting the stack")
    func depth() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(deep) }
    }

    @Test("control characters in strings are escaped on output")
    func controlCharacters() throws {
        #expect(JSONValue.string("a\u{01}b").serialized == #""a\u0001b""#)
    }
}
