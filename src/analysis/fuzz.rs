//! `rhapi check` and the loader never panic, whatever a file holds: 10,000 scripts, made by
//! mutating the repository's own `.rhai` files and the hints' examples (tokens deleted,
//! inserted, swapped, JavaScript snippets put in, the text cut anywhere), go through the
//! lexer, the lint rules (token and syntax-tree rules), the hint matchers and the route
//! compiler.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use super::hints::{for_compile_error, for_runtime_error, scan, HABITS};
use super::source::SourceFile;

/// What mutations insert: JavaScript habits, and pieces of Rhai that open or close things.
const SNIPPETS: &[&str] = &[
    "null",
    "undefined",
    "{ a: 1 }",
    "x => x",
    "(a, b) => a",
    "||",
    "? 1 : 2",
    "function ",
    "export default ",
    "for (let i = 0; i < 3; i++) ",
    "'hello'",
    "'",
    "===",
    "!==",
    ".length",
    "parseInt(",
    ".toLowerCase()",
    ".includes(",
    "console.log(",
    "JSON.stringify(",
    "Date.now()",
    "new ",
    "async ",
    "await ",
    "`",
    "`a ${",
    "}`",
    "${",
    "\\n",
    "#{",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ",",
    ":",
    "::",
    "global::",
    "const X = 1;",
    "fn ",
    "fn GET(req) {",
    "try {",
    "} catch (e) {",
    "import \"x\" as x;",
    "\"",
    "/*",
    "*/",
    "//",
    "é",
    "\u{1F600}",
    "\r\n",
    "\t",
    "\0",
    "let",
    "if",
    "else",
    "=>",
    "|x|",
    "0x",
    "1e",
    "..",
    "..=",
    "?.",
    "??",
];

/// A small deterministic generator (xorshift64*): the same scripts on every run (the
/// language server's fuzz test draws from it too).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn rhai_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rhai_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rhai") {
            found.push(path);
        }
    }
}

/// The repository's own scripts and the hints' examples.
fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "pages",
        "examples",
        "src/scaffold",
        "tests/fixtures",
        "tests/app",
    ] {
        rhai_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut seeds: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    seeds.extend(HABITS.iter().map(|h| h.example.to_string()));
    seeds
}

/// Places in `text` where a cut keeps valid UTF-8: the boundaries between words and
/// punctuation (the tokens, roughly).
fn boundaries(text: &str) -> Vec<usize> {
    let mut cuts = vec![0];
    let mut previous = None;
    for (i, c) in text.char_indices() {
        let class = if c.is_alphanumeric() || c == '_' {
            0
        } else if c.is_whitespace() {
            1
        } else {
            2
        };
        if previous != Some(class) || class == 2 {
            cuts.push(i);
        }
        previous = Some(class);
    }
    cuts.push(text.len());
    cuts.dedup();
    cuts
}

/// One mutation of `text`.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let cuts = boundaries(text);
    let pick = |rng: &mut Rng| cuts[rng.below(cuts.len())];
    let (mut a, mut b) = (pick(rng), pick(rng));
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    match rng.below(6) {
        // Delete a token (or a span of them).
        0 => {
            let end = cuts.iter().copied().find(|&c| c > a).unwrap_or(a);
            let end = if rng.below(4) == 0 { b.max(end) } else { end };
            format!("{}{}", &text[..a], &text[end..])
        }
        // Insert a snippet.
        1 | 2 => {
            let snippet = SNIPPETS[rng.below(SNIPPETS.len())];
            format!("{}{snippet}{}", &text[..a], &text[a..])
        }
        // Swap two spans.
        3 => {
            let c = cuts.iter().copied().find(|&c| c > b).unwrap_or(b);
            format!("{}{}{}{}", &text[..a], &text[b..c], &text[a..b], &text[c..])
        }
        // Duplicate a span somewhere else.
        4 => {
            let at = pick(rng);
            format!("{}{}{}", &text[..at], &text[a..b], &text[at..])
        }
        // Cut the text.
        _ => text[..a].to_string(),
    }
}

/// Everything `check` and the loader do with a file's text; whether it failed to compile.
fn read_everything(engine: &rhai::Engine, knowledge: &super::AppKnowledge, text: &str) -> bool {
    let source = SourceFile::new("pages/api/fuzz.rhai", text);
    let _ = super::lexer::lex(text);
    let _ = crate::tools::lint::route_warnings(&source);
    let _ = scan(&source);
    let _ = super::check_file(&source, knowledge);
    let compiled =
        crate::script::compile_route(engine, "pages/api/fuzz.rhai", Path::new("fuzz.rhai"), text);
    let Err(err) = compiled.result else {
        return false;
    };
    let (line, column) = (err.location.line, err.location.column);
    let _ = for_compile_error(&err.message, text, line, column);
    let _ = for_runtime_error(&err.message, &["X".to_string()]);
    // A position anywhere, even past the end.
    let _ = for_compile_error(&err.message, text, Some(line.unwrap_or(1) + 3), Some(999));
    true
}

#[test]
fn ten_thousand_mutated_scripts_never_panic() {
    let seeds = seeds();
    assert!(
        seeds.len() > 50,
        "the repository's scripts: {}",
        seeds.len()
    );
    let mut engine = rhai::Engine::new();
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    let knowledge = super::AppKnowledge::from_engine(&engine, None);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut failed_to_compile = 0;
    for n in 0..10_000 {
        let mut text = seeds[n % seeds.len()].clone();
        for _ in 0..=rng.below(4) {
            text = mutate(&mut rng, &text);
        }
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
            read_everything(&engine, &knowledge, &text)
        }));
        let Ok(failed) = ran else {
            panic!("script {n} panicked:\n{text}");
        };
        failed_to_compile += usize::from(failed);
    }
    // The mutations do reach the error paths (and not only them).
    assert!(
        (2_000..9_900).contains(&failed_to_compile),
        "{failed_to_compile}"
    );
}
