/// One character cell: its character and its style role.
public struct Cell: Hashable, Sendable {
    public var character: Character
    public var role: StyleRole

    public static let blank = Cell(character: " ", role: .normal)
}

/// A frame of the console: `width × height` cells, drawn by the views and presented by a
/// ``Terminal``. Pure: tests render into it and compare text.
public struct ScreenBuffer: Hashable, Sendable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int) {
        self.width = max(width, 0)
        self.height = max(height, 0)
        cells = Array(repeating: .blank, count: self.width * self.height)
    }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set { cells[y * width + x] = newValue }
    }

    /// Writes `text` from column `x` on row `y`, clipped to the buffer (and to `maxWidth`).
    /// Returns the column after the last character written.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, role: StyleRole = .normal, maxWidth: Int? = nil) -> Int {
        guard y >= 0 && y < height else { return x }
        let limit = min(width, maxWidth.map { x + $0 } ?? width)
        var column = x
        for character in text where column < limit {
            if column >= 0 { self[column, y] = Cell(character: character, role: role) }
            column += 1
        }
        return column
    }

    /// Paints a role over a row span without changing the characters.
    public mutating func paint(_ role: StyleRole, y: Int, from x: Int = 0, to end: Int? = nil) {
        guard y >= 0 && y < height else { return }
        for column in max(x, 0)..<min(end ?? width, width) { self[column, y].role = role }
    }

    /// Fills a row span with spaces in a role.
    public mutating func fill(y: Int, from x: Int = 0, to end: Int? = nil, role: StyleRole) {
        guard y >= 0 && y < height else { return }
        for column in max(x, 0)..<min(end ?? width, width) { self[column, y] = Cell(character: " ", role: role) }
    }

    /// The characters of one row.
    public func text(row y: Int) -> String {
        String((0..<width).map { self[$0, y].character })
    }

    /// Every row, trailing spaces trimmed: what snapshot tests compare.
    public var text: String {
        (0..<height).map { row -> String in
            var line = text(row: row)
            while line.last == " " { line.removeLast() }
            return line
        }.joined(separator: "\n")
    }

    /// Rows that differ from `previous` (all of them when the size changed).
    public func changedRows(since previous: ScreenBuffer?) -> [Int] {
        guard let previous, previous.width == width, previous.height == height else { return Array(0..<height) }
        return (0..<height).filter { row in
            let start = row * width
            return cells[start..<start + width] != previous.cells[start..<start + width]
        }
    }
}
