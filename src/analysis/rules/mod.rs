//! The lint rules of `rhapi check`, one per file, of two kinds. A token [`Rule`] looks at
//! one route function (its name, what kind of route function it is, and its body's tokens)
//! and returns at most one [`Diagnostic`]. A [`TreeRule`] reads the whole file as Rhai's
//! parser does (its syntax tree, see [`super::tree`]) with what the app's engine knows
//! ([`AppKnowledge`]), and returns any number. Rules only warn: `check` still exits 0 on
//! them.
//!
//! To add a rule: a file here with a doc comment (what it finds, and why it matters), a
//! `pub const RULE: Rule` (or `TreeRule`) with a new code, a unit test, and a line in
//! [`RULES`] (or [`TREE_RULES`]); then its code in docs/reference.md (`check`).
//!
//! | code | finds |
//! |---|---|
//! | `try-catch-value` | a route function whose last statement is `try`/`catch` ([`try_catch_value`]) |
//! | `if-without-else` | a method function whose value is an `if` without `else` ([`if_without_else`]) |
//! | `unknown-function` | a call of a function nothing defines ([`unknown_function`]) |
//! | `unknown-property` | a field of `req` or a method of `res` that does not exist ([`unknown_property`]) |
//! | `discarded-value` | the value of a call that changes nothing, thrown away ([`discarded_value`]) |

pub mod discarded_value;
pub mod if_without_else;
pub mod try_catch_value;
pub mod unknown_function;
pub mod unknown_property;

use rhai::Token;

use super::diagnostic::Diagnostic;
use super::knowledge::AppKnowledge;
use super::lexer::{matching_brace, Lexed};
use super::outline::functions;
use super::route_shape::RouteFunction;
use super::source::{Position, Range, SourceFile};

/// What a rule looks at: one top-level route function of a file.
pub struct RouteFn<'a> {
    /// `GET`, `handler`, ...
    pub name: &'a str,
    pub kind: RouteFunction,
    /// The tokens of its body, without the braces.
    pub body: &'a [Lexed],
}

/// A lint rule: its code and its check.
pub struct Rule {
    /// The stable code its diagnostics carry.
    pub code: &'static str,
    /// The diagnostic about one route function, if any.
    pub check: fn(&RouteFn) -> Option<Diagnostic>,
}

/// Every rule, in the order their diagnostics about one function are listed.
pub const RULES: &[Rule] = &[try_catch_value::RULE, if_without_else::RULE];

/// What a tree rule looks at: a whole file, parsed, and what the app's engine knows.
pub struct Tree<'a> {
    pub source: &'a SourceFile,
    pub ast: &'a rhai::AST,
    pub knowledge: &'a AppKnowledge,
}

/// A lint rule that reads a file's syntax tree: its code and its check.
pub struct TreeRule {
    /// The stable code its diagnostics carry.
    pub code: &'static str,
    /// The diagnostics about one file.
    pub check: fn(&Tree) -> Vec<Diagnostic>,
}

/// Every tree rule.
pub const TREE_RULES: &[TreeRule] = &[
    unknown_function::RULE,
    unknown_property::RULE,
    discarded_value::RULE,
];

/// The diagnostics of every rule, token and tree rules alike, and of the JavaScript
/// habits ([`super::hints`]) about `source`, sorted by position. Any text is fine: a file that does not parse gets only the token rules'
/// (the loader reports why it does not parse).
pub fn check_file(source: &SourceFile, knowledge: &AppKnowledge) -> Vec<Diagnostic> {
    let mut found = check(source);
    found.extend(super::hints::scan(source));
    if let Some(ast) = super::knowledge::parse(source.text()) {
        let tree = Tree {
            source,
            ast: &ast,
            knowledge,
        };
        for rule in TREE_RULES {
            found.extend((rule.check)(&tree));
        }
    }
    drop_covered_by_hints(source, &mut found);
    found.sort_by_key(|d| d.range.start);
    found
}

/// A JavaScript habit (`parseInt(x)`, `s.includes(y)`, `JSON.stringify(x)`) is also an
/// unknown function: the hint, which names the Rhai form, is enough, so the tree rules'
/// diagnostics on its text (the dotted name that starts where the hint does) are left out.
fn drop_covered_by_hints(source: &SourceFile, found: &mut Vec<Diagnostic>) {
    let hints: Vec<Position> = found
        .iter()
        .filter(|d| d.code.starts_with("js-"))
        .map(|d| d.range.start)
        .collect();
    let covered = |start: Position| {
        hints.iter().any(|hint| {
            if hint.line != start.line || hint.column > start.column {
                return false;
            }
            // Only name characters and `.` between the hint and the diagnostic.
            let line = source.line(start.line).unwrap_or("");
            line.chars()
                .skip(hint.column - 1)
                .take(start.column - hint.column)
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        })
    };
    found.retain(|d| !TREE_RULES.iter().any(|rule| rule.code == d.code) || !covered(d.range.start));
}

/// The diagnostics of every rule about the route functions of `source`, in source order.
/// Any text is fine: a source that does not lex to the end is read as far as it lexes.
pub fn check(source: &SourceFile) -> Vec<Diagnostic> {
    let tokens = super::lexer::lex(source.text()).tokens;
    let mut found = Vec::new();
    for function in functions(&tokens) {
        let Some(kind) = function.route() else {
            continue;
        };
        let route_fn = RouteFn {
            name: &function.name,
            kind,
            body: function.body(&tokens),
        };
        found.extend(RULES.iter().filter_map(|rule| (rule.check)(&route_fn)));
    }
    found
}

/// The tokens of the last statement of `body` (the tokens inside a block).
pub fn last_statement(body: &[Lexed]) -> &[Lexed] {
    let mut depth = 0usize;
    let mut start = 0;
    for (k, lexed) in body.iter().enumerate() {
        match lexed.token {
            Token::LeftBrace | Token::MapStart | Token::LeftParen | Token::LeftBracket => {
                depth += 1
            }
            Token::RightParen | Token::RightBracket => depth = depth.saturating_sub(1),
            Token::RightBrace => {
                depth = depth.saturating_sub(1);
                // A block statement (`if`, `try`, loops) needs no `;`: what follows it starts
                // a new statement unless it continues this one.
                let continues = matches!(
                    body.get(k + 1).map(|t| &t.token),
                    None | Some(Token::Else | Token::Catch | Token::Period | Token::SemiColon)
                );
                if depth == 0 && !continues && starts_block_statement(&body[start..k]) {
                    start = k + 1;
                }
            }
            Token::SemiColon if depth == 0 => start = k + 1,
            _ => {}
        }
    }
    &body[start..]
}

fn starts_block_statement(statement: &[Lexed]) -> bool {
    matches!(
        statement.first().map(|t| &t.token),
        Some(Token::If | Token::Try | Token::While | Token::Loop | Token::For | Token::Do)
    )
}

/// Whether the block opening at `open` is closed and ends in a value (its last token is
/// not `;`).
pub fn block_yields_value(tokens: &[Lexed], open: usize) -> bool {
    matching_brace(tokens, open)
        .is_some_and(|close| close > open + 1 && tokens[close - 1].token != Token::SemiColon)
}

/// The range of a statement: from its first token to just after its last token's first
/// character (the whole statement when it ends in `}`, as block statements do).
pub fn statement_range(statement: &[Lexed]) -> Range {
    let start = statement.first().map_or(Position::default(), |t| t.at);
    let last = statement.last().map_or(start, |t| t.at);
    Range::new(start, Position::new(last.line, last.column + 1))
}

/// [`check`] of a file holding `text`, for the rules' tests.
#[cfg(test)]
pub fn check_text(text: &str) -> Vec<Diagnostic> {
    check(&SourceFile::new("pages/api/t.rhai", text))
}

/// [`check_file`] of a file holding `text` with the knowledge of a real app engine (an
/// empty app in a temporary folder), for the tree rules' tests: the diagnostics of `code`.
#[cfg(test)]
pub fn check_tree(text: &str, code: &str) -> Vec<Diagnostic> {
    check_file(&SourceFile::new("pages/api/t.rhai", text), test_knowledge())
        .into_iter()
        .filter(|d| d.code == code)
        .collect()
}

/// What a real app engine knows (an empty app in a temporary folder), built once.
#[cfg(test)]
fn test_knowledge() -> &'static AppKnowledge {
    use std::sync::OnceLock;
    static KNOWLEDGE: OnceLock<AppKnowledge> = OnceLock::new();
    KNOWLEDGE.get_or_init(|| {
        let engine = crate::script::engine::for_tests();
        AppKnowledge::from_engine(&engine, None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input that made the old `rhapi check` slice out of range: lexing stops at the
    /// character literal, inside an unclosed body.
    #[test]
    fn a_file_that_stops_lexing_never_panics() {
        for source in [
            "fn GET() { 'hello' }",
            "fn GET() {\n    let greeting = 'hello';\n    #{ greeting: greeting }\n}\n",
            "fn GET() { try { 'hello' } catch { 1 } }",
            "fn POST() { if a { 'hello' } }",
            "fn GET() {",
            "fn GET() { try {",
            "fn GET() { if a {",
            "fn handler",
            "}}} fn GET() { } {{",
            "'hello'",
        ] {
            let _ = check_text(source);
        }
        assert!(check_text("fn GET() { 'hello' }").is_empty());
    }

    /// Every rule on thousands of broken variants of real scripts (cut short, a character
    /// dropped, doubled or replaced by one that Rhai gives meaning to): no panic, and every
    /// diagnostic lies inside the file.
    #[test]
    fn mutated_scripts_never_panic() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let scripts = [
            "examples/conduit/pages/api/articles/[slug]/index.rhai",
            "examples/conduit/pages/api/_lib/articles.rhai",
            "pages/api/contact.rhai",
            "src/scaffold/pages/api/hello.rhai",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        let specials = [
            '{', '}', '(', ')', '.', ';', '"', '`', '\'', '#', ':', '|', '$',
        ];
        let mut checked = 0;
        for script in scripts {
            let text = std::fs::read_to_string(root.join(script)).unwrap();
            let chars: Vec<char> = text.chars().collect();
            for round in 0..250 {
                let at = next(chars.len());
                let mut mutated = chars.clone();
                match round % 4 {
                    0 => mutated.truncate(at),
                    1 => {
                        mutated.remove(at.min(mutated.len() - 1));
                    }
                    2 => mutated.insert(at, mutated[at.min(mutated.len() - 1)]),
                    _ => mutated[at.min(chars.len() - 1)] = specials[next(specials.len())],
                }
                let source = SourceFile::new(script, mutated.into_iter().collect::<String>());
                let lines = source.text().lines().count().max(1);
                for d in check_file(&source, test_knowledge()) {
                    assert!(d.range.start.line <= lines + 1, "{d:?}");
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 1000);
    }

    /// A JavaScript habit gets its hint, not also an unknown-function warning; an unknown
    /// function elsewhere on the line still gets one.
    #[test]
    fn habits_are_hinted_once() {
        let text = "fn GET(req) {\n    let n = parseInt(req.query.n); let t = JSON.stringify(n);\n    let ok = t.includes(\"a\"); db::qurey(n)\n}";
        let codes: Vec<&str> =
            check_file(&SourceFile::new("pages/api/t.rhai", text), test_knowledge())
                .iter()
                .map(|d| d.code)
                .collect();
        assert_eq!(
            codes,
            ["js-parseint", "js-json", "js-includes", "unknown-function"],
        );
    }

    #[test]
    fn the_last_statement() {
        let tokens = super::super::lexer::lex("a; if b { 1 } c; for x in y { } while z {}").tokens;
        assert_eq!(last_statement(&tokens)[0].token, Token::While);
        assert!(last_statement(&[]).is_empty());
    }

    #[test]
    fn every_rule_has_its_own_code() {
        let mut codes: Vec<&str> = RULES
            .iter()
            .map(|r| r.code)
            .chain(TREE_RULES.iter().map(|r| r.code))
            .collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RULES.len() + TREE_RULES.len());
    }
}
