//! What the server holds: the open documents' texts as the editor has them (unsaved
//! changes included), and per app folder an engine built as `rhapi dev` builds it, whose
//! functions completion, hover and diagnostics read.

use std::any::TypeId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lsp_types::{Position as LspPosition, TextDocumentContentChangeEvent, Url};
use rhai::Engine;

use crate::analysis::{Position, SourceFile};
use crate::env::EnvVars;
use crate::settings::Limits;

/// An open document.
pub struct Document {
    pub text: String,
}

/// A native function of the engine: its full name (`db::query`, `trim`) and parameter
/// types as scripts name them.
#[derive(Clone, Debug)]
pub struct Native {
    pub name: String,
    pub params: Vec<&'static str>,
    /// Whether its first parameter is `res` (a method of `res`).
    pub on_res: bool,
}

impl Native {
    /// `name(type, type)`.
    pub fn signature(&self) -> String {
        format!("{}({})", self.name, self.params.join(", "))
    }
}

/// One app folder: its engine and the engine's functions.
pub struct App {
    pub dir: PathBuf,
    pub engine: Engine,
    pub natives: Vec<Native>,
}

impl App {
    fn build(dir: &Path) -> App {
        let env = Arc::new(EnvVars::default());
        let context = crate::app_context::AppContext::new(&env);
        let engine = crate::script::engine::build(dir, &Limits::default(), &env, &context);
        let res = TypeId::of::<crate::script::res::Res>();
        let natives = engine
            .native_functions()
            .into_iter()
            .filter(|f| {
                let bare = f.name.rsplit("::").next().unwrap_or(&f.name);
                bare.starts_with(|c: char| c.is_ascii_alphabetic()) && !bare.contains('$')
            })
            .map(|f| Native {
                on_res: f.params.first() == Some(&res),
                params: f
                    .params
                    .iter()
                    .map(|&t| match crate::script::catalogue::type_name(t) {
                        Some(name) => name,
                        None if t == res => "res",
                        None => "?",
                    })
                    .collect(),
                name: f.name,
            })
            .collect();
        App {
            dir: dir.to_path_buf(),
            engine,
            natives,
        }
    }

    /// The path of `file` as users see it (relative to the app folder when inside it).
    pub fn shown(&self, file: &Path) -> String {
        file.strip_prefix(&self.dir)
            .unwrap_or(file)
            .display()
            .to_string()
    }
}

/// The open documents and the apps they belong to.
#[derive(Default)]
pub struct Workspace {
    /// The folder the editor opened, if it said.
    pub root: Option<PathBuf>,
    documents: HashMap<Url, Document>,
    apps: HashMap<PathBuf, Arc<App>>,
}

impl Workspace {
    /// Opens (or replaces) a document.
    pub fn open(&mut self, uri: Url, text: String) {
        self.documents.insert(uri, Document { text });
    }

    /// Applies the editor's changes, in order: a change with a range replaces that range,
    /// one without replaces the whole text. A range outside the text is clamped to it.
    pub fn change(&mut self, uri: &Url, changes: Vec<TextDocumentContentChangeEvent>) {
        let Some(doc) = self.documents.get_mut(uri) else {
            return;
        };
        for change in changes {
            match change.range {
                None => doc.text = change.text,
                Some(range) => {
                    let start = offset_of(&doc.text, range.start);
                    let end = offset_of(&doc.text, range.end).max(start);
                    doc.text.replace_range(start..end, &change.text);
                }
            }
        }
    }

    pub fn close(&mut self, uri: &Url) {
        self.documents.remove(uri);
    }

    pub fn text(&self, uri: &Url) -> Option<&str> {
        self.documents.get(uri).map(|d| d.text.as_str())
    }

    /// The text of the file at `path`: the open document's when it is open, else the
    /// file's on disk.
    pub fn read(&self, path: &Path) -> Option<String> {
        let uri = Url::from_file_path(path).ok()?;
        match self.text(&uri) {
            Some(text) => Some(text.to_string()),
            None => std::fs::read_to_string(path).ok(),
        }
    }

    /// The app `path` belongs to: the nearest folder above it holding `pages/`; else the
    /// workspace root when the file is inside it; else the file's own folder.
    pub fn app_of(&mut self, path: &Path) -> Arc<App> {
        let dir = path
            .ancestors()
            .skip(1)
            .find(|dir| dir.join("pages").is_dir())
            .map(Path::to_path_buf)
            .or_else(|| self.root.clone().filter(|root| path.starts_with(root)))
            .or_else(|| path.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let app = self
            .apps
            .entry(dir)
            .or_insert_with_key(|dir| Arc::new(App::build(dir)));
        Arc::clone(app)
    }
}

/// The byte offset of an LSP position (line, UTF-16 units) in `text`, clamped to the line
/// and the text.
pub fn offset_of(text: &str, at: LspPosition) -> usize {
    let mut line_start = 0;
    for _ in 0..at.line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let mut units = 0;
    for (i, c) in text[line_start..line_end].char_indices() {
        if units >= at.character as usize {
            return line_start + i;
        }
        units += c.len_utf16();
    }
    line_end
}

/// The LSP position (0-based line, UTF-16 units) of a [`Position`] of `source`.
pub fn lsp_position(source: &SourceFile, at: Position) -> LspPosition {
    let line = source.line(at.line).unwrap_or("");
    let units: usize = line
        .chars()
        .take(at.column.saturating_sub(1))
        .map(char::len_utf16)
        .sum();
    LspPosition::new(
        at.line.saturating_sub(1) as u32,
        u32::try_from(units).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsp_types::Range;

    /// Every `res` method and battery function the engine has is in the doc tables the
    /// server explains them from (docs/reference.md "res", docs/batteries.md "Reference").
    #[test]
    fn the_doc_tables_cover_the_engine() {
        use crate::analysis::api_docs::{battery_calls, find, res_calls};
        let dir = tempfile::tempdir().unwrap();
        let app = App::build(dir.path());
        let missing: Vec<&str> = app
            .natives
            .iter()
            .filter(|n| {
                let battery = n.name.contains("::") && !n.name.starts_with("env::");
                let documented = if n.on_res {
                    n.name.starts_with("to_") || find(res_calls(), &n.name).is_some()
                } else {
                    !battery || find(battery_calls(), &n.name).is_some()
                };
                !documented
            })
            .map(|n| n.name.as_str())
            .collect();
        assert!(missing.is_empty(), "not in the doc tables: {missing:?}");
        assert!(app.natives.iter().any(|n| n.name == "db::query"));
        assert!(app.natives.iter().any(|n| n.name == "status" && n.on_res));
    }

    #[test]
    fn positions_count_utf16_and_clamp() {
        let text = "a😀b\nxy";
        assert_eq!(offset_of(text, LspPosition::new(0, 3)), 5);
        assert_eq!(offset_of(text, LspPosition::new(0, 99)), 6);
        assert_eq!(offset_of(text, LspPosition::new(1, 1)), 8);
        assert_eq!(offset_of(text, LspPosition::new(9, 0)), text.len());
        let source = SourceFile::new("t", text);
        assert_eq!(
            lsp_position(&source, Position::new(1, 3)),
            LspPosition::new(0, 3)
        );
        assert_eq!(
            lsp_position(&source, Position::new(7, 3)),
            LspPosition::new(6, 0)
        );
    }

    #[test]
    fn incremental_changes_apply_in_order() {
        let mut workspace = Workspace::default();
        let uri = Url::parse("file:///app/pages/api/a.rhai").unwrap();
        workspace.open(uri.clone(), "fn GET() {\n  1\n}\n".into());
        let edit = |line, from, to, text: &str| TextDocumentContentChangeEvent {
            range: Some(Range::new(
                LspPosition::new(line, from),
                LspPosition::new(line, to),
            )),
            range_length: None,
            text: text.into(),
        };
        workspace.change(&uri, vec![edit(1, 2, 3, "42"), edit(0, 3, 6, "POST")]);
        assert_eq!(workspace.text(&uri), Some("fn POST() {\n  42\n}\n"));
        // Backwards and out-of-range ranges are clamped, never a panic.
        workspace.change(&uri, vec![edit(1, 9, 2, "!"), edit(99, 0, 5, "")]);
        assert_eq!(workspace.text(&uri), Some("fn POST() {\n  42!\n}\n"));
    }
}
