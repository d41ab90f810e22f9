//! What is at (or just before) the cursor: the word, and what qualifies it (`db::` before
//! `query`, `req.` before `body`), read from the text of its line.

/// What qualifies a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Qualifier {
    /// Nothing: a plain name.
    None,
    /// `module::` before it.
    Module(String),
    /// `receiver.` before it; the receiver is the name just before the dot (empty when the
    /// dot follows something else, such as `)` or `]`).
    Member(String),
}

/// A word and its qualifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub qualifier: Qualifier,
    /// The word (for completion: the part before the cursor).
    pub name: String,
    /// Followed by `::` (the word is a module's name).
    pub before_path: bool,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The word the cursor at byte `offset` of `text` is completing: from the start of the word
/// up to the cursor.
pub fn completing(text: &str, offset: usize) -> Word {
    let line = line_before(text, offset);
    let start = line.trim_end_matches(is_word).len();
    Word {
        qualifier: qualifier(&line[..start]),
        name: line[start..].to_string(),
        before_path: false,
    }
}

/// The whole word under the cursor at byte `offset` (`None` off any word).
pub fn under(text: &str, offset: usize) -> Option<Word> {
    let offset = floor_boundary(text, offset);
    let before = line_before(text, offset);
    let after_line = &text[offset..];
    let after_line = &after_line[..after_line.find('\n').unwrap_or(after_line.len())];
    let start = before.trim_end_matches(is_word).len();
    let tail_len = after_line.len() - after_line.trim_start_matches(is_word).len();
    let name = format!("{}{}", &before[start..], &after_line[..tail_len]);
    if name.is_empty() {
        return None;
    }
    Some(Word {
        qualifier: qualifier(&before[..start]),
        name,
        before_path: after_line[tail_len..].trim_start().starts_with("::"),
    })
}

/// What the text just before a word says about it.
fn qualifier(before: &str) -> Qualifier {
    let trimmed = before.trim_end();
    if let Some(rest) = trimmed.strip_suffix("::") {
        let rest = rest.trim_end();
        let module = &rest[rest.trim_end_matches(is_word).len()..];
        return Qualifier::Module(module.to_string());
    }
    if let Some(rest) = trimmed.strip_suffix('.') {
        if rest.ends_with('.') {
            return Qualifier::None; // `..` of a range
        }
        let rest = rest.trim_end();
        let receiver = &rest[rest.trim_end_matches(is_word).len()..];
        // `req.body.` is a member of `body`, not of `req`: keep only a plain name.
        let plain = !rest[..rest.len() - receiver.len()].ends_with('.');
        return Qualifier::Member(if plain {
            receiver.to_string()
        } else {
            String::new()
        });
    }
    Qualifier::None
}

/// The text of the line of `offset`, from its start up to `offset`.
fn line_before(text: &str, offset: usize) -> &str {
    let offset = floor_boundary(text, offset);
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    &text[start..offset]
}

/// `offset` clamped to the text and moved back to a character boundary.
fn floor_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(qualifier: Qualifier, name: &str) -> Word {
        Word {
            qualifier,
            name: name.into(),
            before_path: false,
        }
    }

    #[test]
    fn completing_after_paths_and_dots() {
        let text = "let r = db::qu";
        assert_eq!(
            completing(text, text.len()),
            word(Qualifier::Module("db".into()), "qu")
        );
        let text = "x\n  req.";
        assert_eq!(
            completing(text, text.len()),
            word(Qualifier::Member("req".into()), "")
        );
        let text = "req.body.em";
        assert_eq!(
            completing(text, text.len()),
            word(Qualifier::Member(String::new()), "em")
        );
        assert_eq!(
            completing("for i in 0..le", 14),
            word(Qualifier::None, "le")
        );
        assert_eq!(completing("é", 1), word(Qualifier::None, ""));
    }

    #[test]
    fn the_word_under_the_cursor() {
        let text = "let t = auth::verify(token);";
        let found = under(text, 16).unwrap();
        assert_eq!(found, word(Qualifier::Module("auth".into()), "verify"));
        let found = under(text, 9).unwrap();
        assert_eq!((found.name.as_str(), found.before_path), ("auth", true));
        assert_eq!(under(text, 3), Some(word(Qualifier::None, "let")));
        assert_eq!(under("a + b", 2), None);
        assert_eq!(under("", 99), None);
    }
}
