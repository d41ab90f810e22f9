//! A source file as the analysis reads it: the path shown to users, the text, and an index
//! of where its lines start, to go between byte offsets and line:column.

/// A place in a source file: line and column, both 1-based, the way users and Rhai's own
/// errors count them. The column counts characters (not bytes) from the start of the
/// line, as Rhai's lexer does; lines end at `\n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Position {
    /// The position at `line`:`column` (both 1-based).
    pub const fn new(line: usize, column: usize) -> Self {
        Position { line, column }
    }

    /// The position of a token as Rhai's lexer reports it (`None` for `Position::NONE`).
    pub fn from_rhai(pos: rhai::Position) -> Option<Self> {
        Some(Position::new(pos.line()?, pos.position()?))
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A span of a source file: from `start` to `end`, `end` exclusive (the position just
/// after the last character), both 1-based as in [`Position`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

impl Range {
    /// The span from `start` up to (not including) `end`.
    pub const fn new(start: Position, end: Position) -> Self {
        Range { start, end }
    }
}

/// One source file: its path for display (`pages/api/users.rhai`), its text, and where
/// each line starts.
#[derive(Clone, Debug)]
pub struct SourceFile {
    path: String,
    text: String,
    /// Byte offset of the start of each line; the first is 0.
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// The file shown as `path`, holding `text`.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// The path shown to users.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Line `line` (1-based) without its `\n` (or `\r\n`); `None` past the end.
    pub fn line(&self, line: usize) -> Option<&str> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        let text = &self.text[start..end];
        Some(text.strip_suffix('\r').unwrap_or(text))
    }

    /// The position of byte `offset` (clamped to the text, and back to the start of a
    /// character it falls inside).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        Position::new(line, column)
    }

    /// The byte offset of `pos`; `None` when the line does not exist or the column is past
    /// the end of the line plus one (the place just after its last character).
    pub fn offset(&self, pos: Position) -> Option<usize> {
        let start = *self.line_starts.get(pos.line.checked_sub(1)?)?;
        let line = self.line(pos.line)?;
        let column = pos.column.checked_sub(1)?;
        match line.char_indices().nth(column) {
            Some((i, _)) => Some(start + i),
            None if column == line.chars().count() => Some(start + line.len()),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_positions_round_trip() {
        let file = SourceFile::new("a.rhai", "ab\né x\r\n\nlast");
        assert_eq!(file.line(2), Some("é x"));
        assert_eq!(file.line(3), Some(""));
        assert_eq!(file.line(5), None);
        assert_eq!(file.line(0), None);
        assert_eq!(file.position(0), Position::new(1, 1));
        assert_eq!(file.position(3), Position::new(2, 1));
        // `x` is the third character of line 2 but its fourth byte.
        assert_eq!(file.position(6), Position::new(2, 3));
        assert_eq!(file.offset(Position::new(2, 3)), Some(6));
        assert_eq!(file.offset(Position::new(4, 5)), Some(file.text().len()));
        assert_eq!(file.offset(Position::new(4, 6)), None);
        assert_eq!(file.offset(Position::new(0, 1)), None);
        // Inside `é`, and past the end: clamped, never a panic.
        assert_eq!(file.position(4), Position::new(2, 1));
        assert_eq!(file.position(999), Position::new(4, 5));
    }
}
