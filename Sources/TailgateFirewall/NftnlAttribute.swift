/// libnftnl attribute ids arrive as named C enums or as plain `Int` constants, depending on the header;
/// the setters and getters take a `UInt16`.
func attribute(_ value: Int) -> UInt16 {
    UInt16(value)
}

func attribute<Identifier: RawRepresentable>(_ value: Identifier) -> UInt16 where Identifier.RawValue: BinaryInteger {
    UInt16(value.rawValue)
}
