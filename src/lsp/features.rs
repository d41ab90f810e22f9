//! Completion, hover, signature help and go to definition, for one document. What a name
//! means comes from three places: the engine's own functions (batteries, Rhai's packages,
//! `res`'s methods), the doc tables of [`crate::analysis::api_docs`], and the scripts
//! themselves (the file's functions, and the functions of the modules it imports).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lsp_types::{
    CompletionItem, CompletionItemKind, Documentation, Hover, HoverContents, Location,
    MarkupContent, MarkupKind, ParameterInformation, ParameterLabel, Position as LspPosition,
    Range as LspRange, SignatureHelp, SignatureInformation, Url,
};
use rhai::Token;

use super::cursor::{self, Qualifier, Word};
use super::workspace::{lsp_position, App, Workspace};
use crate::analysis::api_docs::{self, Entry};
use crate::analysis::imports::ImportResolver;
use crate::analysis::lexer::lex_with;
use crate::analysis::outline::{functions, import_lines, imports, FunctionDef};
use crate::analysis::SourceFile;

/// One document, as the features read it.
pub struct Doc<'a> {
    pub app: Arc<App>,
    pub path: PathBuf,
    pub text: &'a str,
    pub workspace: &'a Workspace,
}

/// A function of a script: where, its `fn` line, its doc comment.
struct ScriptFn {
    file: PathBuf,
    source: Arc<SourceFile>,
    def: FunctionDef,
}

impl ScriptFn {
    /// `name(a, b)`, from its `fn` line.
    fn signature(&self) -> String {
        let line = self.source.line(self.def.at.line).unwrap_or("");
        let text: String = line
            .chars()
            .skip(self.def.at.column.saturating_sub(1))
            .collect();
        let text = text.strip_prefix("fn").unwrap_or(&text).trim_start();
        let end = text.find(')').map_or(text.len(), |i| i + 1);
        text[..end].to_string()
    }

    fn markdown(&self) -> String {
        fenced(
            &format!("fn {}", self.signature()),
            &self.def.doc(&self.source).join("\n"),
        )
    }
}

/// A code block and text under it, as hover and completion show docs.
fn fenced(code: &str, doc: &str) -> String {
    format!("```rhai\n{code}\n```\n{doc}")
        .trim_end()
        .to_string()
}

fn markup(value: String) -> MarkupContent {
    MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    }
}

impl Doc<'_> {
    /// The functions defined in `path` (read from the editor or the disk).
    fn functions_of(&self, path: &Path) -> Vec<ScriptFn> {
        let Some(text) = self.workspace.read(path) else {
            return Vec::new();
        };
        let tokens = lex_with(&self.app.engine, &text).tokens;
        let source = Arc::new(SourceFile::new(path.display().to_string(), text));
        functions(&tokens)
            .into_iter()
            .map(|def| ScriptFn {
                file: path.to_path_buf(),
                source: Arc::clone(&source),
                def,
            })
            .collect()
    }

    /// The module file imported as `alias` by this document.
    fn module_file(&self, alias: &str) -> Option<PathBuf> {
        let import = import_lines(&self.app.engine, self.text)
            .into_iter()
            .find(|i| i.alias.as_deref() == Some(alias))?;
        ImportResolver::new(&self.app.dir)
            .resolve(&self.path, &import.path)
            .ok()
    }

    /// The script functions a word may name: this file's, or a module's for `alias::name`.
    fn script_fns(&self, qualifier: &Qualifier) -> Vec<ScriptFn> {
        match qualifier {
            Qualifier::None => {
                let own = Arc::new(SourceFile::new(self.path.display().to_string(), self.text));
                let tokens = lex_with(&self.app.engine, self.text).tokens;
                functions(&tokens)
                    .into_iter()
                    .map(|def| ScriptFn {
                        file: self.path.clone(),
                        source: Arc::clone(&own),
                        def,
                    })
                    .collect()
            }
            Qualifier::Module(alias) => self
                .module_file(alias)
                .map(|file| self.functions_of(&file))
                .unwrap_or_default(),
            Qualifier::Member(_) => Vec::new(),
        }
    }

    /// Completion items at byte `offset`.
    pub fn completion(&self, offset: usize) -> Vec<CompletionItem> {
        let word = cursor::completing(self.text, offset);
        let mut items = match &word.qualifier {
            Qualifier::Member(receiver) if receiver == "req" => api_docs::req_fields()
                .iter()
                .map(|e| entry_item(e, CompletionItemKind::FIELD))
                .collect(),
            Qualifier::Member(receiver) if receiver == "res" => self.res_items(),
            Qualifier::Member(_) => self.method_items(),
            Qualifier::Module(module) => self.module_items(module),
            Qualifier::None => self.plain_items(),
        };
        items.retain(|item| item.label.starts_with(&word.name));
        items.sort_by(|a, b| a.label.cmp(&b.label));
        items.dedup_by(|a, b| a.label == b.label);
        items
    }

    fn res_items(&self) -> Vec<CompletionItem> {
        let mut items: Vec<CompletionItem> = self
            .app
            .natives
            .iter()
            .filter(|n| n.on_res && !n.name.starts_with("to_"))
            .map(|n| match api_docs::find(api_docs::res_calls(), &n.name) {
                Some(entry) => entry_item(entry, CompletionItemKind::METHOD),
                None => native_item(&n.name, n.signature()),
            })
            .collect();
        items.sort_by(|a, b| a.label.cmp(&b.label));
        items
    }

    /// Methods of any value: the engine's global functions.
    fn method_items(&self) -> Vec<CompletionItem> {
        self.app
            .natives
            .iter()
            .filter(|n| !n.name.contains("::") && !n.on_res)
            .map(|n| native_item(&n.name, n.signature()))
            .collect()
    }

    /// `module::`: a battery's (or `env`'s) functions, or an imported module's.
    fn module_items(&self, module: &str) -> Vec<CompletionItem> {
        let prefix = format!("{module}::");
        let mut items: Vec<CompletionItem> = self
            .app
            .natives
            .iter()
            .filter_map(|n| Some((n, n.name.strip_prefix(&prefix)?)))
            .map(|(n, bare)| {
                let mut item = match api_docs::find(api_docs::battery_calls(), &n.name) {
                    Some(entry) => entry_item(entry, CompletionItemKind::FUNCTION),
                    None => native_item(&n.name, n.signature()),
                };
                item.label = bare.to_string();
                item
            })
            .collect();
        let qualifier = Qualifier::Module(module.to_string());
        items.extend(self.script_fns(&qualifier).iter().map(script_item));
        items
    }

    fn plain_items(&self) -> Vec<CompletionItem> {
        let mut items: Vec<CompletionItem> = self
            .script_fns(&Qualifier::None)
            .iter()
            .map(script_item)
            .collect();
        let modules = self
            .app
            .natives
            .iter()
            .filter_map(|n| n.name.split_once("::"));
        items.extend(modules.map(|(module, _)| CompletionItem {
            label: module.to_string(),
            kind: Some(CompletionItemKind::MODULE),
            ..Default::default()
        }));
        for name in ["req", "res"] {
            items.push(CompletionItem {
                label: name.into(),
                kind: Some(CompletionItemKind::VARIABLE),
                ..Default::default()
            });
        }
        items.extend(
            self.app
                .natives
                .iter()
                .filter(|n| !n.name.contains("::") && !n.on_res)
                .map(|n| native_item(&n.name, n.signature())),
        );
        items
    }

    /// Hover docs of the word at byte `offset`.
    pub fn hover(&self, offset: usize) -> Option<Hover> {
        let word = cursor::under(self.text, offset)?;
        let value = self.describe(&word)?;
        Some(Hover {
            contents: HoverContents::Markup(markup(value)),
            range: None,
        })
    }

    /// What a word is, as markdown.
    fn describe(&self, word: &Word) -> Option<String> {
        let entry_doc = |e: &Entry| fenced(&e.call, &e.doc);
        match &word.qualifier {
            Qualifier::Member(r) if r == "req" => {
                api_docs::find(api_docs::req_fields(), &word.name).map(entry_doc)
            }
            Qualifier::Member(r) if r == "res" => {
                api_docs::find(api_docs::res_calls(), &word.name).map(entry_doc)
            }
            Qualifier::Module(module) => {
                let full = format!("{module}::{}", word.name);
                if let Some(entry) = api_docs::find(api_docs::battery_calls(), &full) {
                    return Some(entry_doc(entry));
                }
                self.named_fn(word)
                    .map(|f| f.markdown())
                    .or_else(|| self.native_doc(&full))
            }
            Qualifier::Member(_) => self.native_doc(&word.name),
            Qualifier::None => self
                .named_fn(word)
                .map(|f| f.markdown())
                .or_else(|| self.native_doc(&word.name)),
        }
    }

    /// The engine's signatures of `name`, one a line.
    fn native_doc(&self, name: &str) -> Option<String> {
        let lines: Vec<String> = self
            .app
            .natives
            .iter()
            .filter(|n| n.name == name)
            .map(|n| n.signature())
            .collect();
        (!lines.is_empty()).then(|| fenced(&lines.join("\n"), ""))
    }

    fn named_fn(&self, word: &Word) -> Option<ScriptFn> {
        self.script_fns(&word.qualifier)
            .into_iter()
            .find(|f| f.def.name == word.name)
    }

    /// Where the word at byte `offset` is defined: an imported module's function
    /// (`auth::verify`), a module (`auth`, or the path of an `import`), a function of this
    /// file.
    pub fn definition(&self, offset: usize) -> Option<Location> {
        if let Some(file) = self.import_path_at(offset) {
            return file_start(&file);
        }
        let word = cursor::under(self.text, offset)?;
        if word.before_path {
            return file_start(&self.module_file(&word.name)?);
        }
        let found = self.named_fn(&word)?;
        let at = lsp_position(&found.source, found.def.at);
        Some(Location::new(
            Url::from_file_path(&found.file).ok()?,
            LspRange::new(at, at),
        ))
    }

    /// The module file of the `import "..."` whose path string holds byte `offset`.
    fn import_path_at(&self, offset: usize) -> Option<PathBuf> {
        let source = SourceFile::new("", self.text);
        let at = source.position(offset);
        let line = source.line(at.line)?;
        let import = imports(&lex_with(&self.app.engine, line).tokens)
            .into_iter()
            .next()?;
        let open = line.find('"')?;
        let close = open + 1 + line[open + 1..].find('"')?;
        let column = line.char_indices().take_while(|(i, _)| *i < open).count() + 1;
        let close_column = line.char_indices().take_while(|(i, _)| *i <= close).count() + 1;
        (column..close_column).contains(&at.column).then_some(())?;
        ImportResolver::new(&self.app.dir)
            .resolve(&self.path, &import.path)
            .ok()
    }

    /// Signature help for the call whose arguments hold byte `offset`.
    pub fn signature_help(&self, offset: usize) -> Option<SignatureHelp> {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset)?;
        let call = open_call(&lex_with(&self.app.engine, before).tokens)?;
        let word = Word {
            qualifier: call.qualifier,
            name: call.name,
            before_path: false,
        };
        let signatures = self.signatures(&word);
        (!signatures.is_empty()).then_some(SignatureHelp {
            signatures,
            active_signature: Some(0),
            active_parameter: Some(call.argument),
        })
    }

    fn signatures(&self, word: &Word) -> Vec<SignatureInformation> {
        let documented = match &word.qualifier {
            Qualifier::Module(m) => {
                api_docs::find(api_docs::battery_calls(), &format!("{m}::{}", word.name))
            }
            Qualifier::Member(r) if r == "res" => api_docs::find(api_docs::res_calls(), &word.name),
            _ => None,
        };
        if let Some(entry) = documented {
            // As the table writes them: `db::query(...)`, `res.status(...)`.
            let written = match &word.qualifier {
                Qualifier::Member(_) => format!("res.{}", entry.name),
                _ => entry.name.clone(),
            };
            let calls = calls_named(&entry.call, &written);
            return calls
                .into_iter()
                .map(|c| signature(c, &entry.doc))
                .collect();
        }
        if let Some(found) = self.named_fn(word) {
            let doc = found.def.doc(&found.source).join("\n");
            return vec![signature(found.signature(), &doc)];
        }
        let full = match &word.qualifier {
            Qualifier::Module(m) => format!("{m}::{}", word.name),
            _ => word.name.clone(),
        };
        let on_res = matches!(&word.qualifier, Qualifier::Member(r) if r == "res");
        self.app
            .natives
            .iter()
            .filter(|n| n.name == full && n.on_res == on_res)
            .map(|n| {
                // A method's receiver is not an argument.
                let skip = usize::from(matches!(word.qualifier, Qualifier::Member(_)));
                let params = n.params.get(skip..).unwrap_or(&[]).join(", ");
                signature(format!("{}({params})", n.name), "")
            })
            .collect()
    }
}

/// The calls of `name` written in a table cell (`http::get(url[, opts])` out of a cell
/// naming three calls).
fn calls_named(cell: &str, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = cell;
    let needle = format!("{name}(");
    while let Some(at) = rest.find(&needle) {
        let from = &rest[at..];
        let mut depth = 0;
        let end = from.char_indices().find_map(|(i, c)| {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            None
        });
        let end = end.unwrap_or(from.len());
        found.push(from[..end].to_string());
        rest = &from[end..];
    }
    found
}

/// A signature whose parameters are the comma-separated parts between its parentheses.
fn signature(label: String, doc: &str) -> SignatureInformation {
    let open = label.find('(').map_or(label.len(), |i| i + 1);
    let close = label.rfind(')').unwrap_or(label.len()).max(open);
    let mut parameters = Vec::new();
    let mut start = open;
    let mut depth = 0;
    for (i, c) in label[open..close].char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parameters.push(param(&label, start, open + i));
                start = open + i + 1;
            }
            _ => {}
        }
    }
    if !label[start..close].trim().is_empty() {
        parameters.push(param(&label, start, close));
    }
    SignatureInformation {
        documentation: (!doc.is_empty()).then(|| Documentation::MarkupContent(markup(doc.into()))),
        parameters: Some(parameters),
        active_parameter: None,
        label,
    }
}

/// The parameter of `label` between two byte offsets, trimmed, as UTF-16 offsets.
fn param(label: &str, start: usize, end: usize) -> ParameterInformation {
    let part = &label[start..end];
    let start = start + (part.len() - part.trim_start().len());
    let end = start + part.trim().len();
    let units = |i: usize| label[..i].encode_utf16().count() as u32;
    ParameterInformation {
        label: ParameterLabel::LabelOffsets([units(start), units(end)]),
        documentation: None,
    }
}

/// An unclosed call at the end of `tokens`: its function and which argument is open.
struct OpenCall {
    qualifier: Qualifier,
    name: String,
    argument: u32,
}

fn open_call(tokens: &[crate::analysis::lexer::Lexed]) -> Option<OpenCall> {
    let mut depth = 0usize;
    let mut argument = 0u32;
    for k in (0..tokens.len()).rev() {
        match tokens[k].token {
            Token::RightParen | Token::RightBracket | Token::RightBrace => depth += 1,
            Token::LeftBracket | Token::LeftBrace | Token::MapStart if depth > 0 => depth -= 1,
            // Inside an array or map argument: its commas were not the call's.
            Token::LeftBracket | Token::MapStart => argument = 0,
            Token::LeftBrace => return None,
            Token::LeftParen if depth > 0 => depth -= 1,
            Token::Comma if depth == 0 => argument += 1,
            Token::LeftParen => {
                let Some(Token::Identifier(name)) = tokens.get(k.checked_sub(1)?).map(|t| &t.token)
                else {
                    return None;
                };
                let qualifier = match k
                    .checked_sub(3)
                    .map(|q| (&tokens[q].token, &tokens[q + 1].token))
                {
                    Some((Token::Identifier(m), Token::DoubleColon)) => {
                        Qualifier::Module(m.to_string())
                    }
                    Some((Token::Identifier(r), Token::Period)) => Qualifier::Member(r.to_string()),
                    Some((_, Token::Period)) => Qualifier::Member(String::new()),
                    _ => Qualifier::None,
                };
                return Some(OpenCall {
                    qualifier,
                    name: name.to_string(),
                    argument,
                });
            }
            Token::SemiColon if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// The start of `file`, as a location.
fn file_start(file: &Path) -> Option<Location> {
    let start = LspPosition::new(0, 0);
    Some(Location::new(
        Url::from_file_path(file).ok()?,
        LspRange::new(start, start),
    ))
}

fn entry_item(entry: &Entry, kind: CompletionItemKind) -> CompletionItem {
    let label = entry
        .name
        .rsplit("::")
        .next()
        .unwrap_or(&entry.name)
        .to_string();
    CompletionItem {
        label,
        kind: Some(kind),
        detail: Some(entry.call.clone()),
        documentation: Some(Documentation::MarkupContent(markup(entry.doc.clone()))),
        ..Default::default()
    }
}

fn native_item(name: &str, signature: String) -> CompletionItem {
    CompletionItem {
        label: name.rsplit("::").next().unwrap_or(name).to_string(),
        kind: Some(CompletionItemKind::FUNCTION),
        detail: Some(signature),
        ..Default::default()
    }
}

fn script_item(found: &ScriptFn) -> CompletionItem {
    CompletionItem {
        label: found.def.name.clone(),
        kind: Some(CompletionItemKind::FUNCTION),
        detail: Some(format!("fn {}", found.signature())),
        documentation: Some(Documentation::MarkupContent(markup(
            found.def.doc(&found.source).join("\n"),
        ))),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::lexer::lex;

    #[test]
    fn calls_and_parameters_from_a_table_cell() {
        let cell = "http::get(url[, opts]), http::post(url, body[, opts]), http::request(#{ method, url })";
        assert_eq!(
            calls_named(cell, "http::post"),
            ["http::post(url, body[, opts])"]
        );
        assert!(calls_named(cell, "http::put").is_empty());
        let found = signature("http::post(url, body[, opts])".into(), "");
        let labels: Vec<ParameterLabel> = found
            .parameters
            .unwrap()
            .into_iter()
            .map(|p| p.label)
            .collect();
        assert_eq!(
            labels,
            [
                ParameterLabel::LabelOffsets([11, 14]),
                ParameterLabel::LabelOffsets([16, 28])
            ]
        );
        assert!(signature("f()".into(), "").parameters.unwrap().is_empty());
        assert!(signature("no parens".into(), "")
            .parameters
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_open_call_before_the_cursor() {
        let call =
            |text: &str| open_call(&lex(text).tokens).map(|c| (c.qualifier, c.name, c.argument));
        assert_eq!(
            call("let r = db::query(\"x\", [1, 2"),
            Some((Qualifier::Module("db".into()), "query".into(), 1))
        );
        assert_eq!(
            call("res.status(f(1, 2), "),
            Some((Qualifier::Member("res".into()), "status".into(), 1))
        );
        assert_eq!(call("f(1); g"), None);
        assert_eq!(call("fn GET() { x"), None);
        assert_eq!(call(")))"), None);
    }

    /// Every feature on mutated scripts at every kind of place: no panic.
    #[test]
    fn garbage_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pages/api")).unwrap();
        std::fs::write(dir.path().join("pages/lib.rhai"), "fn f(a) { a }").unwrap();
        let mut workspace = Workspace::default();
        let path = dir.path().join("pages/api/x.rhai");
        let app = workspace.app_of(&path);
        let base = "import \"../lib\" as lib;\nfn GET(req, res) {\n  let r = db::query(\"s\", [lib::f(req.body)]);\n  res.json(#{ r: `${r}` })\n}\n";
        let pieces = [
            "(",
            ")",
            "{",
            "}",
            "#{",
            "`${",
            "\"",
            "'",
            "é",
            "::",
            ".",
            ",",
            "\n",
            "import \"",
            "\u{0}",
        ];
        let mut rng = crate::analysis::fuzz::Rng(0x9e37_79b9_7f4a_7c15);
        let mut next = |n: usize| rng.below(n);
        for _ in 0..1_000 {
            let mut text = base.to_string();
            for _ in 0..1 + next(4) {
                let mut at = next(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, pieces[next(pieces.len())]);
            }
            let source = SourceFile::new("pages/api/x.rhai", text.as_str());
            crate::tools::lint::file_diagnostics(&app.engine, &app.dir, &path, &source);
            let doc = Doc {
                app: Arc::clone(&app),
                path: path.clone(),
                text: &text,
                workspace: &workspace,
            };
            let offset = next(text.len() + 2);
            doc.completion(offset);
            doc.hover(offset);
            doc.definition(offset);
            doc.signature_help(offset);
        }
    }
}
