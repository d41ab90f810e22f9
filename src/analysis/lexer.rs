//! The one token reader of Rhai source: every reader of scripts that does not run them
//! (route loading's trailing-`;` rule, the lint rules of `rhapi check`, `rhapi openapi`)
//! reads these tokens, so strings, comments and template strings never confuse it.
//!
//! Nothing here indexes blindly: a source that stops lexing (`'hello'` is a bad character
//! literal in Rhai), an unclosed brace or a stray `}` gives fewer tokens or `None`, never a
//! panic.

use rhai::{Engine, Token};

use super::source::Position;

/// A token of a Rhai source, where it starts, and the brace depth after it.
#[derive(Clone, Debug)]
pub struct Lexed {
    pub token: Token,
    pub at: Position,
    /// Open `{` (blocks, maps, `${` of template strings) after this token.
    pub depth: usize,
}

/// The tokens of a source, and why lexing stopped early if it did.
#[derive(Debug, Default)]
pub struct Lexing {
    pub tokens: Vec<Lexed>,
    /// The lexer's error and where, when it stopped before the end (the tokens before it
    /// are kept; the parser reports the same error when the file is compiled).
    pub error: Option<(String, Position)>,
}

/// The tokens of `source`, lexed by a raw engine (no custom symbols): for tools.
pub fn lex(source: &str) -> Lexing {
    lex_with(&Engine::new_raw(), source)
}

/// The tokens of `source` lexed as `engine`'s parser lexes them: after the `}` closing a
/// `${`, the lexer is told to go back to the template string's text.
pub fn lex_with(engine: &Engine, source: &str) -> Lexing {
    let inputs = [source];
    let (mut stream, control) = engine.lex(&inputs);
    let mut out = Lexing::default();
    let mut depth = 0usize;
    // Depths at which a `${` of a template string opened: the `}` that brings the depth
    // back there returns the lexer to the string's text.
    let mut interpolations: Vec<usize> = Vec::new();
    for (token, pos) in stream.by_ref() {
        let at = Position::from_rhai(pos).unwrap_or_default();
        match &token {
            Token::EOF => break,
            Token::LexError(err) => {
                out.error = Some((err.to_string(), at));
                break;
            }
            // `` `a ${`` lexes as `InterpolatedString("a ")` followed by a `{` token of its
            // own (see rhai's `parse_string_literal`): the `{` counts the depth.
            Token::InterpolatedString(_) => interpolations.push(depth),
            Token::LeftBrace | Token::MapStart => depth += 1,
            Token::RightBrace => {
                depth = depth.saturating_sub(1);
                if interpolations.last() == Some(&depth) {
                    interpolations.pop();
                    control.borrow_mut().is_within_text = true;
                }
            }
            _ => {}
        }
        out.tokens.push(Lexed { token, at, depth });
    }
    out
}

/// Whether `token` opens a brace (`{` of a block or of a `${`, or `#{` of a map).
pub fn opens_brace(token: &Token) -> bool {
    matches!(token, Token::LeftBrace | Token::MapStart)
}

/// The index of the `}` matching the `{` (or `#{`) at `open`; `None` when `open` is no
/// brace or the brace is never closed (a source that stopped lexing).
pub fn matching_brace(tokens: &[Lexed], open: usize) -> Option<usize> {
    if !opens_brace(&tokens.get(open)?.token) {
        return None;
    }
    let mut depth = 0usize;
    for (k, lexed) in tokens.iter().enumerate().skip(open) {
        match lexed.token {
            Token::LeftBrace | Token::MapStart => depth += 1,
            Token::RightBrace => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_character_literal_stops_lexing_without_a_panic() {
        let lexing = lex("fn GET() { 'hello' }");
        assert_eq!(lexing.tokens.len(), 4, "fn GET () {{");
        let (_, at) = lexing.error.expect("a lex error");
        assert_eq!(at, Position::new(1, 12));
        // The `{` is never closed, and there is no token 99: no match, not a panic.
        assert_eq!(matching_brace(&lexing.tokens, 3), None);
        assert_eq!(matching_brace(&lexing.tokens, 99), None);
        assert_eq!(matching_brace(&lexing.tokens, 0), None);
    }

    #[test]
    fn template_strings_and_comments_keep_the_depth() {
        let lexing = lex("fn GET() { `a ${ #{b: 1}.b } }` /* } */ }");
        assert!(lexing.error.is_none());
        let tokens = &lexing.tokens;
        let close = matching_brace(tokens, 3).expect("closed");
        assert_eq!(close, tokens.len() - 1);
        assert_eq!(tokens[close].depth, 0);
        // After the `}` of `${`, the lexer is back in the string: ` }` is text.
        assert!(tokens.iter().all(|t| !matches!(t.token, Token::Comment(_))));
        assert_eq!(
            tokens
                .iter()
                .filter(|t| t.token == Token::RightBrace)
                .count(),
            3
        );
    }
}
