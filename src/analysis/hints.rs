//! The JavaScript habits that do not work in Rhai, in one table ([`HABITS`]): each row says
//! how to recognise the habit and the hint that names the Rhai form. The same table serves
//! the three places a user meets the mistake:
//!
//! - a compile error (the loader, `rhapi check`, the `dev` 500 body): [`for_compile_error`]
//!   matches the error and the tokens around its position;
//! - a run-time error (the `dev` body and the log line): [`for_runtime_error`] matches the
//!   error's message;
//! - `rhapi check` on a file whose habit only fails when it runs: [`scan`] finds it in the
//!   tokens and reports a warning.
//!
//! A new habit is one row: a code, the habit as the docs name it, the hint, an example
//! script that must produce the hint (a unit test runs every example), and the matchers
//! that apply. A matcher says yes only when the pattern really is there: a hint on a
//! correct script is worse than none (a test runs `check` over the repository's apps).

use std::collections::HashSet;

use rhai::Token;

use super::diagnostic::{Diagnostic, Severity};
use super::lexer::{lex, Lexed};
use super::outline::{functions, FunctionDef};
use super::source::{Position, Range, SourceFile};

/// One JavaScript habit and its hint.
pub struct Habit {
    /// Stable code of the warning `rhapi check` gives for it, e.g. `js-parseint`.
    pub code: &'static str,
    /// The habit as written in JavaScript, e.g. "`parseInt(x)`".
    pub habit: &'static str,
    /// What to write in Rhai instead.
    pub hint: &'static str,
    /// A script with the habit: it must produce this hint (see the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub example: &'static str,
    /// Whether a compile error at this place is the habit.
    pub parse: Option<fn(&Site) -> bool>,
    /// Whether a run-time error (its message) is the habit.
    pub runtime: Option<fn(&str, &[String]) -> bool>,
    /// Whether the token at this index starts the habit, in a file that compiles.
    pub scan: Option<fn(&Scan, usize) -> bool>,
}

/// A compile error and what surrounds it.
pub struct Site<'a> {
    /// The error's message (`Syntax error: 'null' is a reserved keyword`).
    pub message: &'a str,
    /// The file's text.
    pub source: &'a SourceFile,
    pub tokens: &'a [Lexed],
    /// The index of the token at the error's position (or the first after it; the number
    /// of tokens when lexing stopped there).
    pub at: usize,
    pub position: Position,
}

impl Site<'_> {
    /// The token `back` places before the error's token.
    fn before(&self, back: usize) -> Option<&Token> {
        let k = self.at.checked_sub(back)?;
        self.tokens.get(k).map(|t| &t.token)
    }

    /// Whether one of the `count` tokens before the error's token (and the token itself)
    /// on the error's line is `wanted`.
    fn near(&self, count: usize, wanted: impl Fn(&Token) -> bool) -> bool {
        let from = self.at.saturating_sub(count);
        let to = (self.at + 1).min(self.tokens.len());
        self.tokens[from..to]
            .iter()
            .any(|t| t.at.line == self.position.line && wanted(&t.token))
    }
}

/// A file read for [`scan`]: its tokens and the names it declares.
pub struct Scan<'a> {
    pub source: &'a SourceFile,
    pub tokens: &'a [Lexed],
    /// Every name the file declares anywhere (`let`, `const`, `fn`, parameters, `for`,
    /// closure parameters, `import ... as`).
    declared: HashSet<String>,
    /// Names used as map keys (`#{ length: 1 }`): a property of that name may exist.
    keys: HashSet<String>,
    /// The file's top-level `const`s.
    consts: Vec<String>,
    functions: Vec<FunctionDef>,
}

/// Every habit, in the order they are tried.
pub const HABITS: &[Habit] = &[
    Habit {
        code: "js-null",
        habit: "`null` / `undefined`",
        hint: "Rhai has no `null` or `undefined`: nothing is `()` (test it with `x == ()`), and `x ?? fallback` gives a default",
        example: "fn GET(req) {\n    if req.query.page == null { return 1; }\n    2\n}\n",
        parse: Some(|site| site.message.contains("'null' is a reserved keyword")),
        runtime: Some(|message, _| message == "Variable not found: undefined"),
        scan: Some(|scan, i| scan.free_name(i, "undefined")),
    },
    Habit {
        code: "js-object-literal",
        habit: "`{ a: 1 }` object literal",
        hint: "an object map is written `#{ a: 1 }` (a bare `{` starts a block)",
        example: "fn GET(req, res) {\n    res.json({ ok: true })\n}\n",
        parse: Some(|site| {
            site.before(0) == Some(&Token::Colon)
                && matches!(
                    site.before(1),
                    Some(Token::Identifier(_) | Token::StringConstant(_))
                )
                && site.before(2) == Some(&Token::LeftBrace)
        }),
        runtime: None,
        scan: None,
    },
    Habit {
        code: "js-arrow",
        habit: "`x => ...` arrow function",
        hint: "a closure is written `|x| x.id` (`|a, b| { ... }` for more)",
        example: "fn GET(req) {\n    [#{ id: 1 }].map(x => x.id)\n}\n",
        parse: Some(arrow_function),
        runtime: None,
        scan: None,
    },
    Habit {
        code: "js-or-default",
        habit: "`a || b` as a default",
        hint: "`||`, `&&`, `!` and `if` take only `true` or `false`: for a default write `a ?? b`, and test for nothing with `x == ()`",
        example: "fn GET(req) {\n    let page = req.query.page || \"1\";\n    page\n}\n",
        parse: Some(|site| {
            site.message.contains("Expecting a boolean expression") && site.before(1) == Some(&Token::Or)
        }),
        runtime: Some(|message, _| message.ends_with("(expecting bool)")),
        scan: None,
    },
    Habit {
        code: "js-ternary",
        habit: "`a ? b : c`",
        hint: "Rhai has no `?:`; `if` is an expression: `if a { b } else { c }`",
        example: "fn GET(req) {\n    let size = req.query.big ? \"big\" : \"small\";\n    size\n}\n",
        parse: Some(|site| site.message.contains("Unknown operator: '?'")),
        runtime: None,
        scan: None,
    },
    Habit {
        code: "js-export",
        habit: "`export default function handler`",
        hint: "a route file exports nothing: name the function after its method, `fn GET(req) { ... }`, or `fn handler(req, res) { ... }` for every method",
        example: "export default function handler(req, res) {\n    res.json(#{ ok: true })\n}\n",
        parse: Some(|site| site.near(3, |t| *t == Token::Export)),
        runtime: None,
        scan: None,
    },
    Habit {
        code: "js-function",
        habit: "`function`",
        hint: "functions are written `fn name(params) { ... }`; a function value is a closure `|x| ...`",
        example: "function GET(req) {\n    1\n}\n",
        parse: Some(|site| site.near(8, |t| is_identifier(t, "function"))),
        runtime: None,
        scan: None,
    },
    Habit {
        code: "js-c-for",
        habit: "C-style `for (let i = 0; ...)`",
        hint: "Rhai loops over a range or an array: `for i in 0..n { ... }`, `for item in items { ... }`",
        example: "fn GET(req) {\n    for (let i = 0; i < 3; i++) { }\n    1\n}\n",
        parse: Some(c_style_for),
        runtime: None,
        scan: None,
    },
    Habit {
        code: "js-single-quote",
        habit: "single-quoted strings",
        hint: "strings take double quotes, \"hello\" (or back-ticks for `${...}`); `'a'` is a single character",
        example: "fn GET(req) {\n    let greeting = 'hello';\n    greeting\n}\n",
        parse: Some(|site| {
            site.message.contains("Invalid character")
                && site.source.offset(site.position).and_then(|k| site.source.text()[k..].chars().next()) == Some('\'')
        }),
        runtime: None,
        scan: None,
    },
    Habit {
        code: "js-strict-equals",
        habit: "`===` / `!==`",
        hint: "use `==` and `!=`: they never convert between types (`1 == \"1\"` is false)",
        example: "fn GET(req) {\n    if req.query.a === \"1\" { 1 } else { 2 }\n}\n",
        parse: Some(|site| {
            site.message.contains("'===' is not a valid operator")
                || site.message.contains("'!==' is not a valid operator")
        }),
        runtime: None,
        scan: None,
    },
    Habit {
        code: "js-length",
        habit: "`.length`",
        hint: "strings, arrays, maps and blobs have `len()`: `s.len()`",
        example: "fn GET(req) {\n    let name = \"Ada\";\n    name.length\n}\n",
        parse: None,
        runtime: Some(|message, _| message.starts_with("Unknown property 'length'")),
        scan: Some(length_property),
    },
    Habit {
        code: "js-parseint",
        habit: "`parseInt` / `parseFloat`",
        hint: "use `parse_int(text)` / `parse_float(text)` (they throw on text that is not a number: catch it to answer 400)",
        example: "fn GET(req) {\n    parseInt(\"42\")\n}\n",
        parse: None,
        runtime: Some(|message, _| {
            message.starts_with("Function not found: parseInt (")
                || message.starts_with("Function not found: parseFloat (")
        }),
        scan: Some(|scan, i| {
            scan.free_call(i, "parseInt") || scan.free_call(i, "parseFloat")
        }),
    },
    Habit {
        code: "js-case",
        habit: "`.toLowerCase()` / `.toUpperCase()`",
        hint: "use `to_lower()` / `to_upper()`: they return a new string (`make_lower()` changes the variable in place)",
        example: "fn GET(req) {\n    \"Ada\".toLowerCase()\n}\n",
        parse: None,
        runtime: Some(|message, _| {
            message.starts_with("Function not found: toLowerCase (")
                || message.starts_with("Function not found: toUpperCase (")
        }),
        scan: Some(|scan, i| {
            scan.method_call(i, "toLowerCase") || scan.method_call(i, "toUpperCase")
        }),
    },
    Habit {
        code: "js-includes",
        habit: "`.includes()`",
        hint: "use `contains(x)`: `s.contains(\"@\")`, `items.contains(x)`; for a map key, `\"key\" in map`",
        example: "fn GET(req) {\n    \"a@b\".includes(\"@\")\n}\n",
        parse: None,
        runtime: Some(|message, _| message.starts_with("Function not found: includes (")),
        scan: Some(|scan, i| scan.method_call(i, "includes")),
    },
    Habit {
        code: "js-console",
        habit: "`console.log`",
        hint: "use `log::info(value)` (or `log::warn`, `log::error`): one line in the server log",
        example: "fn GET(req) {\n    console.log(\"hi\");\n    1\n}\n",
        parse: None,
        runtime: Some(|message, _| message == "Variable not found: console"),
        scan: Some(|scan, i| scan.free_object(i, "console")),
    },
    Habit {
        code: "js-json",
        habit: "`JSON.stringify` / `JSON.parse`",
        hint: "use `parse_json(text)` and `map.to_json()`; a route returns a map (or `res.json(map)`) and rhapi sends it as JSON",
        example: "fn GET(req) {\n    JSON.stringify(#{ a: 1 })\n}\n",
        parse: None,
        runtime: Some(|message, _| message == "Variable not found: JSON"),
        scan: Some(|scan, i| scan.free_object(i, "JSON")),
    },
    Habit {
        code: "js-date",
        habit: "`Date.now()`",
        hint: "use `time::now()`: milliseconds since the Unix epoch, an integer",
        example: "fn GET(req) {\n    #{ at: Date.now() }\n}\n",
        parse: None,
        runtime: Some(|message, _| message == "Variable not found: Date"),
        scan: Some(|scan, i| scan.free_object(i, "Date")),
    },
    Habit {
        code: "js-new",
        habit: "`new`",
        hint: "Rhai has no classes or `new`: build a map `#{ ... }`; for the time use `time::now()`",
        example: "fn GET(req) {\n    let at = new Date();\n    at\n}\n",
        parse: Some(|site| site.message.contains("'new' is a reserved keyword")),
        runtime: None,
        scan: None,
    },
    Habit {
        code: "js-async",
        habit: "`async` / `await`",
        hint: "Rhai has no `async` or `await`: calls that wait (`http::get`, `db::query`, `sleep`) return their result directly",
        example: "fn GET(req) {\n    let r = await http::get(\"https://example.com\");\n    r\n}\n",
        parse: Some(|site| {
            site.message.contains("'async' is a reserved keyword")
                || site.message.contains("'await' is a reserved keyword")
        }),
        runtime: None,
        scan: None,
    },
    Habit {
        code: "js-global-const",
        habit: "a top-level `const` read inside a function",
        hint: "a function cannot see the file's top-level variables: read a top-level `const` as `global::NAME`",
        example: "const LIMIT = 10;\nfn GET(req) {\n    LIMIT\n}\n",
        parse: None,
        runtime: Some(|message, consts| {
            message
                .strip_prefix("Variable not found: ")
                .is_some_and(|name| consts.iter().any(|c| c == name))
        }),
        scan: Some(const_in_function),
    },
    Habit {
        code: "js-backtick-escape",
        habit: "a back-ticked string with `\\n`",
        hint: "back-ticks keep backslashes as written: put a real line break inside the back-ticks, or use a \"...\\n\" string",
        example: "fn GET(req) {\n    let name = \"Ada\";\n    `Hi,\\n\\n${name}`\n}\n",
        parse: None,
        runtime: None,
        scan: Some(backtick_escape),
    },
];

/// The hint for a compile error with `message` at `line`:`column` of a file holding
/// `text`, if the error is a JavaScript habit.
pub fn for_compile_error(
    message: &str,
    text: &str,
    line: Option<usize>,
    column: Option<usize>,
) -> Option<&'static str> {
    let position = Position::new(line?, column?);
    let source = SourceFile::new("", text);
    let tokens = lex(text).tokens;
    let at = tokens
        .iter()
        .position(|t| t.at >= position)
        .unwrap_or(tokens.len());
    let site = Site {
        message,
        source: &source,
        tokens: &tokens,
        at,
        position,
    };
    HABITS
        .iter()
        .find(|habit| habit.parse.is_some_and(|matches| matches(&site)))
        .map(|habit| habit.hint)
}

/// The hint for a run-time error with `message`, if it is a JavaScript habit. `consts` are
/// the top-level constants of the file the error happened in.
pub fn for_runtime_error(message: &str, consts: &[String]) -> Option<&'static str> {
    HABITS
        .iter()
        .find(|habit| {
            habit
                .runtime
                .is_some_and(|matches| matches(message, consts))
        })
        .map(|habit| habit.hint)
}

/// The warnings of `rhapi check` about habits in `source` that only fail when they run
/// (the others are compile errors, which carry their hint). Any text is fine.
pub fn scan(source: &SourceFile) -> Vec<Diagnostic> {
    let tokens = lex(source.text()).tokens;
    let scan = Scan::new(source, &tokens);
    let mut found = Vec::new();
    for (i, lexed) in tokens.iter().enumerate() {
        for habit in HABITS {
            if habit.scan.is_some_and(|matches| matches(&scan, i)) {
                let at = lexed.at;
                found.push(Diagnostic {
                    code: habit.code,
                    severity: Severity::Warning,
                    range: Range::new(at, Position::new(at.line, at.column + 1)),
                    message: format!("JavaScript habit: {}", habit.habit),
                    hint: Some(habit.hint.to_string()),
                });
            }
        }
    }
    found
}

fn is_identifier(token: &Token, name: &str) -> bool {
    matches!(token, Token::Identifier(id) if id.as_str() == name)
}

/// `x => ...` (the error is at `=>`) or `(a, b) => ...` (the error is inside the
/// parentheses, whose `)` is followed by `=>`).
fn arrow_function(site: &Site) -> bool {
    if site.before(0) == Some(&Token::DoubleArrow) {
        return true;
    }
    let mut depth = 0usize;
    for (k, lexed) in site.tokens.iter().enumerate().skip(site.at).take(32) {
        match lexed.token {
            Token::LeftParen => depth += 1,
            Token::RightParen if depth == 0 => {
                let next = site.tokens.get(k + 1).map(|t| &t.token);
                return next == Some(&Token::DoubleArrow);
            }
            Token::RightParen => depth -= 1,
            Token::LeftBrace | Token::RightBrace | Token::SemiColon => return false,
            _ => {}
        }
    }
    false
}

/// `for (`: the error is at the `(` or just after it.
fn c_style_for(site: &Site) -> bool {
    (0..3).any(|back| {
        site.before(back) == Some(&Token::LeftParen) && site.before(back + 1) == Some(&Token::For)
    })
}

/// `x.length` (not `#{ length: 1 }.length`: a file with a `length` key is left alone).
fn length_property(scan: &Scan, i: usize) -> bool {
    scan.token(i).is_some_and(|t| is_identifier(t, "length"))
        && scan.token(i.wrapping_sub(1)) == Some(&Token::Period)
        && !matches!(scan.token(i + 1), Some(Token::Equals))
        && !scan.keys.contains("length")
}

/// A name of the file's top-level `const`s read inside a function that does not declare
/// it itself.
fn const_in_function(scan: &Scan, i: usize) -> bool {
    let Some(Token::Identifier(name)) = scan.token(i) else {
        return false;
    };
    let declaring = matches!(
        scan.token(i.wrapping_sub(1)),
        Some(Token::Let | Token::Const)
    );
    if !scan.consts.iter().any(|c| c == name.as_str()) || !scan.plain_name(i) || declaring {
        return false;
    }
    let Some(function) = scan
        .functions
        .iter()
        .find(|f| f.open.is_some_and(|open| open < i) && f.close.is_some_and(|close| i < close))
    else {
        return false;
    };
    // Its parameters and locals: the tokens from `fn` to the use.
    let start = scan
        .tokens
        .iter()
        .position(|t| t.at == function.at)
        .unwrap_or(0);
    !declares(&scan.tokens[start..i], name)
}

/// A string written in back-ticks (the token starts at the back-tick, or follows the `}` of
/// an interpolation) whose text holds a backslash and `n`.
fn backtick_escape(scan: &Scan, i: usize) -> bool {
    let (Some(Token::StringConstant(text) | Token::InterpolatedString(text)), Some(lexed)) =
        (scan.token(i), scan.tokens.get(i))
    else {
        return false;
    };
    if !text.contains("\\n") {
        return false;
    }
    let first = scan
        .source
        .offset(lexed.at)
        .and_then(|k| scan.source.text()[k..].chars().next());
    // The text after an interpolation's `}` starts where the `}` ends, not at a quote.
    let after_interpolation =
        scan.token(i.wrapping_sub(1)) == Some(&Token::RightBrace) && first != Some('"');
    first == Some('`') || after_interpolation
}

/// Whether `tokens` declare `name`: after `let`, `const`, `fn`, `for`, `as`, in a
/// function's parameters or a closure's.
fn declares(tokens: &[Lexed], name: &str) -> bool {
    declared_names(tokens).contains(name)
}

fn declared_names(tokens: &[Lexed]) -> HashSet<String> {
    let mut names = HashSet::new();
    let mut in_params = false;
    let mut in_closure = false;
    for (k, lexed) in tokens.iter().enumerate() {
        let before = k.checked_sub(1).map(|b| &tokens[b].token);
        match &lexed.token {
            Token::Identifier(id) => {
                let declaring = matches!(
                    before,
                    Some(Token::Let | Token::Const | Token::Fn | Token::For | Token::As)
                ) || in_params
                    || in_closure
                    || (matches!(before, Some(Token::Comma))
                        && k >= 3
                        && tokens[k - 3].token == Token::For);
                if declaring {
                    names.insert(id.to_string());
                }
            }
            Token::LeftParen if matches!(before, Some(Token::Identifier(_))) => {
                in_params = k >= 2 && tokens[k - 2].token == Token::Fn;
            }
            Token::RightParen => in_params = false,
            Token::Pipe => in_closure = !in_closure,
            _ => {}
        }
    }
    names
}

impl<'a> Scan<'a> {
    fn new(source: &'a SourceFile, tokens: &'a [Lexed]) -> Self {
        let keys = tokens
            .windows(3)
            .filter(|w| {
                matches!(w[0].token, Token::MapStart | Token::Comma) && w[2].token == Token::Colon
            })
            .filter_map(|w| match &w[1].token {
                Token::Identifier(id) => Some(id.to_string()),
                Token::StringConstant(s) => Some(s.to_string()),
                _ => None,
            })
            .collect();
        let consts = tokens
            .windows(2)
            .filter(|w| w[0].token == Token::Const && w[0].depth == 0)
            .filter_map(|w| match &w[1].token {
                Token::Identifier(id) => Some(id.to_string()),
                _ => None,
            })
            .collect();
        Scan {
            source,
            tokens,
            declared: declared_names(tokens),
            keys,
            consts,
            functions: functions(tokens),
        }
    }

    fn token(&self, i: usize) -> Option<&Token> {
        self.tokens.get(i).map(|t| &t.token)
    }

    /// Whether the identifier at `i` is a plain name: not a property (`.x`), not a
    /// module's (`m::x`, `global::x`), not a map key (`#{ x: 1 }`).
    fn plain_name(&self, i: usize) -> bool {
        let before = self.token(i.wrapping_sub(1));
        let key = matches!(before, Some(Token::MapStart | Token::Comma))
            && self.token(i + 1) == Some(&Token::Colon);
        !matches!(
            before,
            Some(Token::Period | Token::DoubleColon | Token::Elvis)
        ) && !key
    }

    /// `name` at `i`, a plain name the file never declares.
    fn free_name(&self, i: usize, name: &str) -> bool {
        self.token(i).is_some_and(|t| is_identifier(t, name))
            && self.plain_name(i)
            && !self.declared.contains(name)
    }

    /// `name.` at `i`: a JavaScript global object the file does not declare.
    fn free_object(&self, i: usize, name: &str) -> bool {
        self.free_name(i, name) && self.token(i + 1) == Some(&Token::Period)
    }

    /// `name(` at `i`, a plain call of a function the file does not define.
    fn free_call(&self, i: usize, name: &str) -> bool {
        self.free_name(i, name) && self.call_follows(i)
    }

    /// Whether `(` (or `()`, one token) follows the token at `i`.
    fn call_follows(&self, i: usize) -> bool {
        matches!(self.token(i + 1), Some(Token::LeftParen | Token::Unit))
    }

    /// `.name(` at `i`, a method the file does not define.
    fn method_call(&self, i: usize, name: &str) -> bool {
        self.token(i).is_some_and(|t| is_identifier(t, name))
            && self.token(i.wrapping_sub(1)) == Some(&Token::Period)
            && self.call_follows(i)
            && !self.declared.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hint a script gets: its compile error's, else its run-time error's (when the
    /// engine runs `GET`), else the first warning of `scan`.
    fn hint_of(script: &str) -> Option<String> {
        let engine = rhai::Engine::new();
        match engine.compile(script) {
            Err(err) => {
                let pos = err.position();
                let message = format!("Syntax error: {}", err.err_type());
                for_compile_error(&message, script, pos.line(), pos.position()).map(String::from)
            }
            Ok(ast) => {
                let source = SourceFile::new("t.rhai", script);
                if let Some(found) = scan(&source).into_iter().next() {
                    return found.hint;
                }
                let req = engine.eval::<rhai::Dynamic>("#{ query: #{} }").unwrap();
                let err = engine
                    .call_fn::<rhai::Dynamic>(&mut rhai::Scope::new(), &ast, "GET", (req,))
                    .err()?;
                let message = err.unwrap_inner().to_string();
                let message = message
                    .split(" (line ")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let consts = ["LIMIT".to_string()];
                for_runtime_error(&message, &consts).map(String::from)
            }
        }
    }

    #[test]
    fn every_example_gets_its_own_hint() {
        for habit in HABITS {
            assert_eq!(
                hint_of(habit.example).as_deref(),
                Some(habit.hint),
                "{}: {}",
                habit.code,
                habit.example
            );
        }
    }

    #[test]
    fn every_habit_has_its_own_code_and_a_matcher() {
        let codes: HashSet<&str> = HABITS.iter().map(|h| h.code).collect();
        assert_eq!(codes.len(), HABITS.len());
        for habit in HABITS {
            assert!(habit.parse.is_some() || habit.runtime.is_some() || habit.scan.is_some());
        }
    }

    #[test]
    fn habits_at_run_time_are_also_found_by_scan() {
        for habit in HABITS.iter().filter(|h| h.parse.is_none()) {
            let found = scan(&SourceFile::new("t.rhai", habit.example));
            assert!(
                found
                    .iter()
                    .any(|d| d.code == habit.code && d.hint.as_deref() == Some(habit.hint)),
                "{}: {found:?}",
                habit.code
            );
        }
    }

    #[test]
    fn correct_rhai_gets_no_hint() {
        for script in [
            "fn GET(req) { let page = req.query.page ?? \"1\"; page }",
            "fn GET(req) { let m = #{ length: 3 }; m.length }",
            "fn GET(req) { let items = [1]; items.map(|x| x + 1) }",
            "fn GET(req) { switch 1 { 1 => 2, _ => 3 } }",
            "const LIMIT = 10;\nfn GET(req) { global::LIMIT }",
            "const LIMIT = 10;\nfn GET(req) { let LIMIT = 3; LIMIT }",
            "const LIMIT = 10;\nfn GET(LIMIT) { LIMIT }",
            "const LIMIT = 10;\nfn GET(req) { #{ LIMIT: 1 } }",
            "fn GET(req) { let s = \"a\\nb\"; `${s}` }",
            "fn GET(req) { let s = `line\nbreak`; s.len() }",
            "fn parseInt(x) { parse_int(x) }\nfn GET(req) { parseInt(\"1\") }",
            "fn GET(req) { let console = #{ log: 1 }; console.log }",
            "fn GET(req) { let c = 'a'; c }",
        ] {
            assert_eq!(hint_of(script), None, "{script}");
        }
    }

    #[test]
    fn other_errors_get_no_hint() {
        assert_eq!(for_runtime_error("Variable not found: LIMIT", &[]), None);
        assert_eq!(
            for_runtime_error("Function not found: parse_intt (string)", &[]),
            None
        );
        assert_eq!(
            for_compile_error("Syntax error: Expecting ';'", "fn GET( {", Some(1), Some(9)),
            None
        );
        assert_eq!(for_compile_error("x", "", None, None), None);
        assert_eq!(for_compile_error("x", "", Some(40), Some(1)), None);
    }

    #[test]
    fn the_other_shapes_of_a_habit() {
        for (script, code) in [
            ("fn GET(req) { let f = (a, b) => a + b; 1 }", "js-arrow"),
            ("fn GET(req) { let f = () => 1; 1 }", "js-arrow"),
            ("fn GET(req) { return { \"a\": 1 }; }", "js-object-literal"),
            ("export function GET(req) { 1 }", "js-export"),
            (
                "fn GET(req) { let f = function(x) { x }; 1 }",
                "js-function",
            ),
            ("fn GET(req) { for (const x of [1]) { } 1 }", "js-c-for"),
            ("fn GET(req) { let s = ''; s }", "js-single-quote"),
            (
                "fn GET(req) { if req.query.a !== \"1\" { 1 } }",
                "js-strict-equals",
            ),
            ("async fn GET(req) { 1 }", "js-async"),
            (
                "fn GET(req) { let d = \"1\"; let p = req.query.page || d; p }",
                "js-or-default",
            ),
            ("fn GET(req) { JSON.parse(\"{}\") }", "js-json"),
            ("fn GET(req) { [1].length }", "js-length"),
            ("fn GET(req) { let x = undefined; x }", "js-null"),
            (
                "const LIMIT = 1;\nfn helper() { LIMIT }\nfn GET(req) { helper() }",
                "js-global-const",
            ),
            (
                "fn GET(req) { let n = 1; `a ${n} b\\n` }",
                "js-backtick-escape",
            ),
        ] {
            let hint = HABITS.iter().find(|h| h.code == code).unwrap().hint;
            assert_eq!(hint_of(script).as_deref(), Some(hint), "{script}");
        }
    }
}
