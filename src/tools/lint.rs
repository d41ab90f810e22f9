//! The warnings of `rhapi check`: route functions whose last statement quietly yields `()`
//! where a value was meant. They do not fail `check`; each names file:line and the fix.

use rhai::{Position, Token};

use crate::script::compile::METHODS;

/// One warning: where, and what to do.
#[derive(Debug, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The warnings of one route file's `source`.
pub fn route_warnings(source: &str) -> Vec<Warning> {
    let tokens = super::tokens(source);
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let (Token::Fn, Some((Token::Identifier(name), _))) = (&tokens[i].0, tokens.get(i + 1)) {
            let name = name.to_string();
            let is_route = name == "handler" || METHODS.contains(&name.as_str());
            let Some(open) = (i..tokens.len()).find(|&k| tokens[k].0 == Token::LeftBrace) else {
                break;
            };
            let close = matching_brace(&tokens, open);
            if is_route {
                warnings.extend(last_statement_warning(&tokens[open + 1..close], &name));
            }
            i = close;
        }
        i += 1;
    }
    warnings
}

/// The index of the `}` matching the `{` (or `#{`) at `open`.
fn matching_brace(tokens: &[(Token, Position)], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, (token, _)) in tokens.iter().enumerate().skip(open) {
        match token {
            Token::LeftBrace | Token::MapStart => depth += 1,
            Token::RightBrace => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    tokens.len().saturating_sub(1)
}

/// The start of the last statement among `body` (the tokens inside a block).
fn last_statement(body: &[(Token, Position)]) -> usize {
    let mut depth = 0usize;
    let mut start = 0;
    for (k, (token, _)) in body.iter().enumerate() {
        match token {
            Token::LeftBrace | Token::MapStart | Token::LeftParen | Token::LeftBracket => {
                depth += 1
            }
            Token::RightParen | Token::RightBracket => depth = depth.saturating_sub(1),
            Token::RightBrace => {
                depth = depth.saturating_sub(1);
                // A block statement (`if`, `try`, loops) needs no `;`: what follows it starts
                // a new statement unless it continues this one.
                let continues = matches!(
                    body.get(k + 1).map(|t| &t.0),
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
    start
}

fn starts_block_statement(statement: &[(Token, Position)]) -> bool {
    matches!(
        statement.first().map(|t| &t.0),
        Some(Token::If | Token::Try | Token::While | Token::Loop | Token::For | Token::Do)
    )
}

/// Whether the block opening at `open` ends in a value (its last token is not `;`).
fn block_yields_value(tokens: &[(Token, Position)], open: usize) -> bool {
    let close = matching_brace(tokens, open);
    close > open + 1 && tokens[close - 1].0 != Token::SemiColon
}

fn last_statement_warning(body: &[(Token, Position)], name: &str) -> Option<Warning> {
    let start = last_statement(body);
    let statement = &body[start..];
    let (first, pos) = statement.first()?;
    let at = |message: String| Warning {
        line: pos.line().unwrap_or(0),
        column: pos.position().unwrap_or(0),
        message,
    };
    match first {
        Token::Try => {
            let open = statement.iter().position(|t| t.0 == Token::LeftBrace)?;
            block_yields_value(statement, open).then(|| {
                at(format!(
                    "fn {name} ends with try/catch, which yields () in Rhai (the route answers {}): use `return` inside it",
                    if name == "handler" { "405" } else { "204" }
                ))
            })
        }
        // `handler` ending in an `if` without `else` is the Next.js style: no branch, 405.
        Token::If if name != "handler" => {
            let mut depth = 0usize;
            let mut has_else = false;
            let mut first_block = None;
            for (k, (token, _)) in statement.iter().enumerate() {
                match token {
                    Token::LeftBrace | Token::MapStart => {
                        if depth == 0 && first_block.is_none() {
                            first_block = Some(k);
                        }
                        depth += 1;
                    }
                    Token::RightBrace => depth = depth.saturating_sub(1),
                    Token::Else if depth == 0 => {
                        // `else if` continues the chain; a plain `else` closes it.
                        has_else = !matches!(statement.get(k + 1).map(|t| &t.0), Some(Token::If));
                    }
                    _ => {}
                }
            }
            let yields = first_block.is_some_and(|open| block_yields_value(statement, open));
            (!has_else && yields).then(|| {
                at(format!(
                    "fn {name} ends with an `if` without `else`: when the condition is false it returns () (204); add an `else` or `return` the value"
                ))
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(source: &str) -> Vec<usize> {
        route_warnings(source).iter().map(|w| w.line).collect()
    }

    #[test]
    fn try_catch_as_the_last_statement_warns() {
        let source = "fn GET() {\n    try { #{ ok: true } } catch (e) { #{ ok: false } }\n}\n";
        let warnings = route_warnings(source);
        assert_eq!(warnings.len(), 1);
        assert_eq!((warnings[0].line, warnings[0].column), (2, 5));
        assert!(warnings[0].message.contains("use `return` inside it"));
        // Statements ending in `;`, a value after it, or a helper function: no warning.
        assert!(
            lines("fn GET(req, res) { try { res.json(1); } catch { res.json(2); } }").is_empty()
        );
        assert!(lines("fn GET() { try { x(); } catch { } ; 1 }").is_empty());
        assert!(lines("fn GET() { let x = 1; try { x = 2; } catch { }\n x }").is_empty());
        assert!(lines("fn helper() { try { 1 } catch { 2 } }").is_empty());
    }

    #[test]
    fn if_without_else_as_the_value_warns() {
        assert_eq!(
            lines("fn GET(req) {\n  let a = 1;\n  if a > 0 { #{ a: a } }\n}"),
            vec![3]
        );
        assert_eq!(lines("fn GET(req) { if a { 1 } else if b { 2 } }"), vec![1]);
        assert!(lines("fn GET(req) { if a { 1 } else { 2 } }").is_empty());
        assert!(lines("fn GET(req) { if a { 1 } else if b { 2 } else { 3 } }").is_empty());
        assert!(lines("fn GET(req, res) { if a { res.json(1); } }").is_empty());
        assert!(lines("fn handler(req) { if req.method == \"GET\" { 1 } }").is_empty());
        // An `if` earlier in the body, a template string with braces: no warning.
        assert!(lines("fn GET(req) { if a { 1 } `${ #{ b: 1 }.b }` }").is_empty());
    }
}
