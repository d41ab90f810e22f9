//! What a file declares at its top level, read from its tokens: its functions (with their
//! bodies and `///` doc comments) and its `import` statements.

use rhai::Token;

use super::lexer::{matching_brace, Lexed};
use super::route_shape::RouteFunction;
use super::source::{Position, SourceFile};

/// A function defined at the top level of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionDef {
    pub name: String,
    /// Where its `fn` is.
    pub at: Position,
    /// Index of the `{` opening its body; `None` when the tokens stop before it.
    pub open: Option<usize>,
    /// Index of the `}` closing its body; `None` when it is never closed.
    pub close: Option<usize>,
}

impl FunctionDef {
    /// Which route function this is, if any.
    pub fn route(&self) -> Option<RouteFunction> {
        RouteFunction::of(&self.name)
    }

    /// The tokens of its body, without the braces (up to the end of `tokens` when the
    /// body is never closed; empty without a body).
    pub fn body<'a>(&self, tokens: &'a [Lexed]) -> &'a [Lexed] {
        let Some(open) = self.open else {
            return &[];
        };
        let end = self.close.unwrap_or(tokens.len());
        tokens.get(open + 1..end).unwrap_or(&[])
    }

    /// Its `///` doc comment lines, without the slashes, top to bottom. Rhai keeps doc
    /// comments only with its `metadata` feature, so they are read from the text.
    pub fn doc(&self, source: &SourceFile) -> Vec<String> {
        let mut doc = Vec::new();
        let mut line = self.at.line;
        while line > 1 {
            line -= 1;
            let text = source.line(line).unwrap_or("").trim();
            let Some(comment) = text.strip_prefix("///") else {
                break;
            };
            let comment = comment.strip_prefix(' ').unwrap_or(comment);
            doc.push(comment.trim_end().to_string());
        }
        doc.reverse();
        doc
    }
}

/// The functions defined at the top level of `tokens`, in source order.
pub fn functions(tokens: &[Lexed]) -> Vec<FunctionDef> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let is_fn = tokens[i].token == Token::Fn && tokens[i].depth == 0;
        let name = match tokens.get(i + 1).map(|t| &t.token) {
            Some(Token::Identifier(name)) if is_fn => name.to_string(),
            _ => {
                i += 1;
                continue;
            }
        };
        let open = (i + 2..tokens.len()).find(|&k| tokens[k].token == Token::LeftBrace);
        let close = open.and_then(|open| matching_brace(tokens, open));
        found.push(FunctionDef {
            name,
            at: tokens[i].at,
            open,
            close,
        });
        // A body that is never closed runs to the end: nothing after it is top level.
        i = close.map_or(tokens.len(), |close| close + 1);
    }
    found
}

/// An `import "path" as alias;` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The path as written, between the quotes.
    pub path: String,
    /// The name after `as`, if any.
    pub alias: Option<String>,
    /// Where its `import` is.
    pub at: Position,
    /// At the top level of the file (not inside a function or block).
    pub top_level: bool,
}

/// Every `import` of `tokens` with a literal path, in source order.
pub fn imports(tokens: &[Lexed]) -> Vec<Import> {
    let token = |k: usize| tokens.get(k).map(|t| &t.token);
    tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| t.token == Token::Import)
        .filter_map(|(i, t)| {
            let Some(Token::StringConstant(path)) = token(i + 1) else {
                return None;
            };
            let alias = match (token(i + 2), token(i + 3)) {
                (Some(Token::As), Some(Token::Identifier(alias))) => Some(alias.to_string()),
                _ => None,
            };
            Some(Import {
                path: path.to_string(),
                alias,
                at: t.at,
                top_level: t.depth == 0,
            })
        })
        .collect()
}

/// The imports of the lines of `text` that start with `import` (after blanks), lexed line
/// by line by `engine`: what an editor needs on every keystroke without lexing the whole
/// file. An `import` after other code on its line is not seen, and `top_level` is not
/// known (always `true`).
pub fn import_lines(engine: &rhai::Engine, text: &str) -> Vec<Import> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if !line.trim_start().starts_with("import") {
            continue;
        }
        for mut import in imports(&super::lexer::lex_with(engine, line).tokens) {
            import.at.line = index + 1;
            found.push(import);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::lexer::lex;

    #[test]
    fn functions_imports_and_docs() {
        let text = "import \"../_lib/v\" as v;\n/// Gets.\n///\n/// More.\nfn GET(req) {\n  import \"x\";\n  `${ #{a: 1}.a }`\n}\nfn helper() { 1 }\nfn broken() { 'hello' }\n";
        let source = SourceFile::new("pages/api/a.rhai", text);
        let tokens = lex(text).tokens;
        let found = functions(&tokens);
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["GET", "helper", "broken"]);
        assert_eq!(found[0].route(), Some(RouteFunction::Method(0)));
        assert_eq!(found[1].route(), None);
        assert_eq!(found[0].doc(&source), ["Gets.", "", "More."]);
        assert!(found[1].doc(&source).is_empty());
        assert_eq!(found[1].body(&tokens).len(), 1);
        // Lexing stops at `'hello'`: a body never closed, read up to the end.
        assert_eq!(found[2].close, None);
        assert!(found[2].body(&tokens).is_empty());

        let found = imports(&tokens);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].path, "../_lib/v");
        assert_eq!(found[0].alias.as_deref(), Some("v"));
        assert_eq!(found[0].at, Position::new(1, 1));
        assert!(found[0].top_level);
        assert_eq!(
            (found[1].alias.as_deref(), found[1].top_level),
            (None, false)
        );

        let by_lines = import_lines(&rhai::Engine::new_raw(), text);
        assert_eq!(by_lines.len(), 2);
        assert_eq!(by_lines[0].at, Position::new(1, 1));
        assert_eq!(
            (by_lines[1].path.as_str(), by_lines[1].at),
            ("x", Position::new(6, 3))
        );
    }
}
