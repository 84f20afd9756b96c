/// The lines of a text and how many columns each has, to tell whether a reported
/// `line:column` lies inside it.
struct TextBounds {
    /// For each line, the number of columns a position on it can have: one per Unicode scalar
    /// (per byte if the text is not UTF-8), and one more for the end of the line.
    private let columns: [Int]

    init(_ bytes: [UInt8]) {
        let isUTF8 = String(validating: bytes, as: UTF8.self) != nil
        var columns: [Int] = []
        var count = 0
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                columns.append(count + 1)
                count = 0
            } else if !isUTF8 || byte & 0xC0 != 0x80 {
                count += 1
            }
        }
        columns.append(count + 1)
        self.columns = columns
    }

    /// Whether a 1-based `line` and `column` point into the text or just past the end of a line.
    func contains(line: Int, column: Int) -> Bool {
        guard line >= 1, line <= self.columns.count else {
            return false
        }
        return column >= 1 && column <= self.columns[line - 1]
    }
}
