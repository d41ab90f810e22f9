//! The app's own files, behind one source: the scripts under `pages/` (routes,
//! `_middleware.rhai`, modules), the job files `jobs/*.rhai`, `migrations/*.sql`, the
//! `.env*` files and `rhapi.toml`.
//! [`AppFiles::scan`] lists them once, each with its [`Kind`]; [`AppFiles::classify`] applies
//! the same rules to a path the watcher reports; [`AppFiles::read`] and
//! [`AppFiles::read_to_string`] are how the loaders read them (never `std::fs` directly).
//!
//! Today every app is on disk ([`Source::Disk`]). A one-file bundle (the app packed into
//! the binary as an archive) plugs in as a second [`Source`] variant: [`AppFiles::open`]
//! picks it when the binary carries an archive, `scan` lists the archive's entries through
//! the same naming rules, `read` hands out their bytes, `is_file` looks them up, and
//! `watch_roots` is empty (a bundle never changes). Paths stay absolute under the app dir
//! (the bundle strips that prefix to find an entry), so the loader's caches, the module
//! resolver and every message stay as they are.
//!
//! Not handled here: the `public/` folder (served by [`crate::http::public`] through
//! actix-files with a cache of its own) and the SQLite database file (opened by the db
//! battery). Both stay on disk; a bundle needs its own answer for `public/`.

use std::path::{Path, PathBuf};

/// The folder of all scripts; modules may live anywhere in it.
const PAGES: &str = "pages";
/// The folder of routes, inside [`PAGES`].
const API: &str = "api";
/// The folder of SQL migrations.
const MIGRATIONS: &str = "migrations";
/// The folder of job files (`jobs/NAME.rhai`, one job each).
const JOBS: &str = "jobs";
/// The file name that makes a folder's middleware.
pub const MIDDLEWARE_FILE: &str = "_middleware.rhai";
/// The dotenv files of the serving environment (a change reloads it).
const ENV_FILES: [&str; 3] = [".env", ".env.local", ".env.example"];
/// The dotenv file of `rhapi test` only.
const TEST_ENV_FILE: &str = ".env.test";

/// What an app file is, by where it is and how it is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A `.rhai` file under `pages/api` with no name (of its own or of a folder) starting
    /// with `_` or `.`: it serves a URL.
    Route,
    /// `_middleware.rhai` in `pages/api` or a folder of its routes.
    Middleware,
    /// Any other `.rhai` file under `pages/`: it runs only when imported.
    Module,
    /// `jobs/NAME.rhai` (a name not starting with `_` or `.`): the job `NAME`.
    Job,
    /// `migrations/*.sql`.
    Migration,
    /// `.env`, `.env.local` or `.env.example`: the serving environment.
    Env,
    /// `.env.test`: the environment of `rhapi test` only.
    TestEnv,
    /// `rhapi.toml`.
    Config,
    /// Only from [`AppFiles::classify`], never scanned: a folder under `pages/`, or a path
    /// there that is gone (it may have been a folder). Renaming or deleting one can move
    /// whole routes.
    PagesEntry,
}

/// One app file found by [`AppFiles::scan`].
#[derive(Clone, Debug)]
pub struct AppFile {
    pub kind: Kind,
    /// Absolute: the app dir joined with the file's place in the app.
    pub path: PathBuf,
    /// As users see it in messages: `pages/api/users/[id].rhai`.
    pub display: String,
}

/// Everything one scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Each kind in the order its reader needs: routes by display path, middleware
    /// outermost first, migrations by the bytes of their names.
    files: Vec<AppFile>,
    /// Why a folder of routes could not be read in full: the list of routes is then not
    /// to be trusted.
    pub pages_error: Option<std::io::Error>,
    /// Why `migrations/` exists but cannot be listed.
    pub migrations_error: Option<std::io::Error>,
}

impl Scan {
    /// The files of one kind, in the order that kind is read in.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &AppFile> {
        self.files.iter().filter(move |f| f.kind == kind)
    }

    fn push(&mut self, kind: Kind, path: PathBuf, dir: &Path) {
        let display = display_path(dir, &path);
        self.files.push(AppFile {
            kind,
            path,
            display,
        });
    }
}

/// Where the app's files come from. A bundle adds a variant here (see the module docs).
#[derive(Clone, Debug)]
pub enum Source {
    /// The app folder on disk.
    Disk,
}

/// A folder the watcher watches, and whether its subfolders count.
pub struct WatchRoot {
    pub path: PathBuf,
    pub recursive: bool,
}

/// The files of the app in one folder.
#[derive(Clone, Debug)]
pub struct AppFiles {
    dir: PathBuf,
    source: Source,
}

impl AppFiles {
    /// The files of the app in `dir` (the one place a bundle would be chosen instead).
    pub fn open(dir: &Path) -> AppFiles {
        AppFiles {
            dir: dir.to_path_buf(),
            source: Source::Disk,
        }
    }

    /// The app dir every path is under.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `pages/api`, the folder of routes.
    pub fn api_dir(&self) -> PathBuf {
        self.dir.join(PAGES).join(API)
    }

    /// The bytes of the app file at `path` (absolute, or relative to the app dir).
    pub fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        match self.source {
            Source::Disk => std::fs::read(self.dir.join(path)),
        }
    }

    /// The text of the app file at `path` (absolute, or relative to the app dir).
    pub fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        match self.source {
            Source::Disk => std::fs::read_to_string(self.dir.join(path)),
        }
    }

    /// Whether `path` (absolute, or relative to the app dir) is a file.
    pub fn is_file(&self, path: &Path) -> bool {
        match self.source {
            Source::Disk => self.dir.join(path).is_file(),
        }
    }

    /// `path` as users see it in messages (see [`display_path`]).
    pub fn display(&self, path: &Path) -> String {
        display_path(&self.dir, path)
    }

    /// What the watcher watches: `pages/` with its subfolders, the app dir itself (for
    /// `.env*` and `rhapi.toml`) and `migrations/`; everything when there is no `pages/`
    /// yet (it may be created later).
    pub fn watch_roots(&self) -> Vec<WatchRoot> {
        let root = |path: PathBuf, recursive| WatchRoot { path, recursive };
        let pages = self.dir.join(PAGES);
        if !pages.is_dir() {
            return vec![root(self.dir.clone(), true)];
        }
        let mut roots = vec![root(pages, true), root(self.dir.clone(), false)];
        for folder in [MIGRATIONS, JOBS] {
            let path = self.dir.join(folder);
            if path.is_dir() {
                roots.push(root(path, false));
            }
        }
        roots
    }

    /// What the changed `path` is, or `None` when no app file changed there. Unlike the
    /// scan, a `.rhai` path counts even when it is gone (it was deleted).
    pub fn classify(&self, path: &Path) -> Option<Kind> {
        let name = path.file_name().and_then(|n| n.to_str());
        let in_dir = path.parent() == Some(self.dir.as_path());
        if path.parent() == Some(self.dir.join(MIGRATIONS).as_path())
            && path.extension().is_some_and(|e| e == "sql")
        {
            Some(Kind::Migration)
        } else if path.parent() == Some(self.dir.join(JOBS).as_path()) {
            name.filter(|n| is_job_file(n)).map(|_| Kind::Job)
        } else if in_dir && name.is_some_and(|n| ENV_FILES.contains(&n)) {
            Some(Kind::Env)
        } else if in_dir && name == Some(TEST_ENV_FILE) {
            Some(Kind::TestEnv)
        } else if path == self.dir.join(crate::config::FILE) {
            Some(Kind::Config)
        } else if !path.starts_with(self.dir.join(PAGES)) {
            None
        } else if path.extension().is_some_and(|e| e == "rhai") {
            Some(self.script_kind(path))
        } else if !path.is_file() {
            Some(Kind::PagesEntry)
        } else {
            None
        }
    }

    /// The kind of a `.rhai` file under `pages/`.
    fn script_kind(&self, path: &Path) -> Kind {
        let Ok(relative) = path.strip_prefix(self.api_dir()) else {
            return Kind::Module;
        };
        let names: Vec<_> = relative.iter().map(|n| n.to_string_lossy()).collect();
        let Some((file, folders)) = names.split_last() else {
            return Kind::Module;
        };
        if folders.iter().any(|n| n.starts_with(['_', '.'])) {
            Kind::Module
        } else if file == MIDDLEWARE_FILE {
            Kind::Middleware
        } else if file.starts_with(['_', '.']) {
            Kind::Module
        } else {
            Kind::Route
        }
    }

    /// Every app file, found in one pass (see [`Scan`] for the order). Under `pages/`, names
    /// starting with `.` are hidden and skipped.
    pub fn scan(&self) -> Scan {
        let mut scan = Scan::default();
        match self.source {
            Source::Disk => self.scan_disk(&mut scan),
        }
        let order = |f: &AppFile| {
            let depth = match f.kind {
                Kind::Middleware => f.path.components().count(),
                _ => 0,
            };
            (f.kind, depth, f.display.clone())
        };
        scan.files.sort_by_cached_key(order);
        scan
    }

    fn scan_disk(&self, scan: &mut Scan) {
        let pages = self.dir.join(PAGES);
        let api = self.api_dir();
        if api.is_dir() {
            self.walk_routes(&api, scan);
        }
        if pages.is_dir() {
            self.walk_modules(&pages, Some(&api), scan);
        }
        self.list_migrations(scan);
        self.list_jobs(scan);
        let root_files = ENV_FILES.iter().map(|name| (*name, Kind::Env)).chain([
            (TEST_ENV_FILE, Kind::TestEnv),
            (crate::config::FILE, Kind::Config),
        ]);
        for (name, kind) in root_files {
            let path = self.dir.join(name);
            if path.is_file() {
                scan.push(kind, path, &self.dir);
            }
        }
    }

    /// A folder that holds routes: its `_middleware.rhai`, its route files, and the
    /// folders below it (those named `_...` hold modules only). An error here makes the
    /// list of routes incomplete, so it is kept; the walk goes on for the middleware.
    fn walk_routes(&self, folder: &Path, scan: &mut Scan) {
        let middleware = folder.join(MIDDLEWARE_FILE);
        if middleware.is_file() {
            scan.push(Kind::Middleware, middleware, &self.dir);
        }
        let entries = match std::fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(err) => return keep_first(&mut scan.pages_error, err),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    keep_first(&mut scan.pages_error, err);
                    continue;
                }
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') || name == MIDDLEWARE_FILE {
                continue;
            }
            if name.starts_with('_') {
                if path.is_dir() {
                    self.walk_modules(&path, None, scan);
                } else if name.ends_with(".rhai") {
                    scan.push(Kind::Module, path, &self.dir);
                }
                continue;
            }
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                Err(err) => {
                    keep_first(&mut scan.pages_error, err);
                    continue;
                }
            };
            if file_type.is_dir() || (file_type.is_symlink() && path.is_dir()) {
                self.walk_routes(&path, scan);
            } else if name.ends_with(".rhai") {
                scan.push(Kind::Route, path, &self.dir);
            }
        }
    }

    /// A folder of modules only (`skip`: the routes folder, walked apart). Errors are not
    /// kept: a module that cannot be read fails the import that names it. Links to folders
    /// are not followed (two links to `.` would make the walk exponential); imports still
    /// follow them.
    fn walk_modules(&self, folder: &Path, skip: Option<&Path>, scan: &mut Scan) {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') || Some(&*path) == skip {
                continue;
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                self.walk_modules(&path, None, scan);
            } else if path.extension().is_some_and(|e| e == "rhai") {
                scan.push(Kind::Module, path, &self.dir);
            }
        }
    }

    /// The `.sql` files of `migrations/` (not following links); no folder is no files.
    fn list_migrations(&self, scan: &mut Scan) {
        let entries = match std::fs::read_dir(self.dir.join(MIGRATIONS)) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) => {
                scan.migrations_error = Some(err);
                return;
            }
        };
        for entry in entries.filter_map(Result::ok) {
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            let is_sql = entry
                .file_name()
                .into_string()
                .is_ok_and(|name| name.ends_with(".sql"));
            if is_file && is_sql {
                scan.push(Kind::Migration, entry.path(), &self.dir);
            }
        }
    }
}

impl AppFiles {
    /// The job files of `jobs/` (not following links to folders); no folder is no jobs.
    fn list_jobs(&self, scan: &mut Scan) {
        let Ok(entries) = std::fs::read_dir(self.dir.join(JOBS)) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let is_file = entry.path().is_file();
            let is_job = entry.file_name().to_str().is_some_and(is_job_file);
            if is_file && is_job {
                scan.push(Kind::Job, entry.path(), &self.dir);
            }
        }
    }
}

/// Whether a file of `jobs/` named `name` is a job: `NAME.rhai`, `NAME` not starting with
/// `_` or `.`.
fn is_job_file(name: &str) -> bool {
    name.strip_suffix(".rhai")
        .is_some_and(|stem| !stem.is_empty() && !stem.starts_with(['_', '.']))
}

/// The job name of a job file (`jobs/send_mail.rhai` -> `send_mail`).
pub fn job_name(file: &AppFile) -> String {
    file.path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

fn keep_first(slot: &mut Option<std::io::Error>, err: std::io::Error) {
    slot.get_or_insert(err);
}

/// A path as users see it in messages: relative to the app dir, with `/` separators.
pub fn display_path(app_dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(app_dir).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An app with one file of each kind (and some that are none).
    fn app() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "pages/api/index.rhai",
            "pages/api/users/[id].rhai",
            "pages/api/users/_middleware.rhai",
            "pages/api/_middleware.rhai",
            "pages/api/_lib/auth.rhai",
            "pages/api/_helper.rhai",
            "pages/api/.hidden.rhai",
            "pages/api/_private/_middleware.rhai",
            "pages/api/notes.txt",
            "pages/lib/shared.rhai",
            "migrations/002_b.sql",
            "migrations/001_a.sql",
            "migrations/readme.md",
            "jobs/send_mail.rhai",
            "jobs/_shared.rhai",
            ".env",
            ".env.test",
            "rhapi.toml",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        dir
    }

    fn found(scan: &Scan, kind: Kind) -> Vec<&str> {
        scan.of(kind).map(|f| f.display.as_str()).collect()
    }

    #[test]
    fn one_scan_finds_each_kind_in_its_order() {
        let dir = app();
        let scan = AppFiles::open(dir.path()).scan();
        assert!(scan.pages_error.is_none() && scan.migrations_error.is_none());
        assert_eq!(
            found(&scan, Kind::Route),
            ["pages/api/index.rhai", "pages/api/users/[id].rhai"]
        );
        assert_eq!(
            found(&scan, Kind::Middleware),
            [
                "pages/api/_middleware.rhai",
                "pages/api/users/_middleware.rhai"
            ]
        );
        assert_eq!(
            found(&scan, Kind::Module),
            [
                "pages/api/_helper.rhai",
                "pages/api/_lib/auth.rhai",
                "pages/api/_private/_middleware.rhai",
                "pages/lib/shared.rhai"
            ]
        );
        assert_eq!(
            found(&scan, Kind::Migration),
            ["migrations/001_a.sql", "migrations/002_b.sql"]
        );
        assert_eq!(found(&scan, Kind::Job), ["jobs/send_mail.rhai"]);
        assert_eq!(found(&scan, Kind::Env), [".env"]);
        assert_eq!(found(&scan, Kind::TestEnv), [".env.test"]);
        assert_eq!(found(&scan, Kind::Config), ["rhapi.toml"]);
    }

    #[test]
    fn classify_agrees_with_the_scan() {
        let dir = app();
        let files = AppFiles::open(dir.path());
        for file in &files.scan().files {
            assert_eq!(
                files.classify(&file.path),
                Some(file.kind),
                "{}",
                file.display
            );
        }
    }

    #[test]
    fn classify_sorts_changes() {
        let dir = app();
        let files = AppFiles::open(dir.path());
        let kind = |path: &str| files.classify(&dir.path().join(path));
        // Gone files and folders under pages/ may move routes.
        assert_eq!(kind("pages/api/gone.rhai"), Some(Kind::Route));
        assert_eq!(kind("pages/api/gone"), Some(Kind::PagesEntry));
        assert_eq!(kind("pages/api/users"), Some(Kind::PagesEntry));
        assert_eq!(kind("pages/api/.hidden.rhai"), Some(Kind::Module));
        assert_eq!(kind("pages/api/notes.txt"), None);
        assert_eq!(kind(".env.local"), Some(Kind::Env));
        assert_eq!(kind(".env.example"), Some(Kind::Env));
        assert_eq!(kind(".env.production"), None);
        assert_eq!(kind("migrations/003_c.sql"), Some(Kind::Migration));
        assert_eq!(kind("migrations/readme.md"), None);
        assert_eq!(kind("migrations/deeper/x.sql"), None);
        assert_eq!(kind("jobs/gone.rhai"), Some(Kind::Job));
        assert_eq!(kind("jobs/_lib.rhai"), None);
        assert_eq!(kind("jobs/deeper/x.rhai"), None);
        assert_eq!(kind("other/.env"), None);
        assert_eq!(kind("public/index.html"), None);
    }

    #[test]
    fn reads_are_relative_to_the_app() {
        let dir = app();
        std::fs::write(dir.path().join(".env"), "A=1\n").unwrap();
        let files = AppFiles::open(dir.path());
        assert_eq!(files.read_to_string(Path::new(".env")).unwrap(), "A=1\n");
        assert_eq!(files.read(&dir.path().join(".env")).unwrap(), b"A=1\n");
        assert!(files.is_file(Path::new("rhapi.toml")));
        assert!(!files.is_file(Path::new("pages")));
    }
}
