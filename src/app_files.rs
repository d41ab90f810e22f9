//! The app's own files, behind one source: the scripts under `pages/` (routes,
//! `_middleware.rhai`, modules), the job files `jobs/*.rhai`, `migrations/*.sql`, the
//! `.env*` files and `rhapi.toml`.
//! [`AppFiles::scan`] lists them once, each with its [`Kind`]; [`AppFiles::classify`] applies
//! the same rules to a path the watcher reports; [`AppFiles::read`] and
//! [`AppFiles::read_to_string`] are how the loaders read them (never `std::fs` directly).
//!
//! An app is on disk ([`Source::Disk`]) or in a bundle ([`Source::Bundle`]: the app packed
//! into the binary by `rhapi bundle`, see [`crate::bundle`]). [`AppFiles::open`] picks the
//! bundle when the process serves one; `scan` then lists the archive's entries through the
//! same naming rules, `read` hands out their bytes, `is_file` looks them up, and
//! `watch_roots` is empty (a bundle never changes). `.env`, `.env.local` and `.env.test` are
//! never bundled: they are read from the folder the bundle runs in. Paths stay absolute under
//! the app dir (the bundle strips that prefix to find an entry), so the loader's caches, the
//! module resolver and every message stay as they are.
//!
//! Not read here: the `public/` folder (served by [`crate::http::public`] through
//! actix-files, from [`AppFiles::public_root`]: a bundle writes its public files to a private
//! folder at start) and the SQLite database file (opened by the db battery, always on disk).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::bundle::Archive;

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
/// The files of where the app runs, never of a bundle (secrets): read from the folder even
/// when the app is bundled.
const HOST_FILES: [&str; 3] = [".env", ".env.local", TEST_ENV_FILE];

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

/// Where the app's files come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The app folder on disk.
    Disk,
    /// A bundle's archive, in memory; [`HOST_FILES`] from the folder.
    Bundle(Arc<Archive>),
}

/// Where one app file of a bundled app is.
enum Place<'a> {
    Bundled(&'a [u8]),
    OnDisk(PathBuf),
    Missing,
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
    /// The files of the app in `dir`: the bundle's when this process serves one (the one
    /// place a bundle is chosen), else the folder's.
    pub fn open(dir: &Path) -> AppFiles {
        let source = match crate::bundle::current() {
            Some(archive) => Source::Bundle(archive),
            None => Source::Disk,
        };
        AppFiles {
            dir: dir.to_path_buf(),
            source,
        }
    }

    /// The files of `archive`, as a bundle running in `dir` sees them.
    #[cfg(test)]
    pub fn bundled(dir: &Path, archive: Archive) -> AppFiles {
        AppFiles {
            dir: dir.to_path_buf(),
            source: Source::Bundle(Arc::new(archive)),
        }
    }

    /// Where the file at `path` (absolute, or relative to the app dir) of a bundled app is.
    fn place<'a>(&self, archive: &'a Archive, path: &Path) -> Place<'a> {
        let full = self.dir.join(path);
        let Ok(relative) = full.strip_prefix(&self.dir) else {
            return Place::Missing;
        };
        let mut parts = Vec::new();
        for component in relative.components() {
            match component.as_os_str().to_str() {
                Some(part) if matches!(component, Component::Normal(_)) => parts.push(part),
                _ => return Place::Missing,
            }
        }
        let name = parts.join("/");
        if HOST_FILES.contains(&name.as_str()) {
            return Place::OnDisk(full);
        }
        archive
            .app
            .get(&name)
            .map_or(Place::Missing, |bytes| Place::Bundled(bytes))
    }

    /// The folder the public files are served from (`configured`: `[public] dir`): a
    /// bundle's is where it wrote them at start (nothing before that).
    pub fn public_root(&self, configured: &str) -> PathBuf {
        match self.source {
            Source::Disk => self.dir.join(configured),
            Source::Bundle(_) => crate::bundle::public_dir()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        }
    }

    /// Whether the app has the folder `name` (`migrations`): for a bundle, whether any of
    /// its files is in it.
    pub fn has_folder(&self, name: &str) -> bool {
        match &self.source {
            Source::Disk => self.dir.join(name).is_dir(),
            Source::Bundle(archive) => {
                let prefix = format!("{name}/");
                archive.app.keys().any(|file| file.starts_with(&prefix))
            }
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
        match &self.source {
            Source::Disk => std::fs::read(self.dir.join(path)),
            Source::Bundle(archive) => match self.place(archive, path) {
                Place::Bundled(bytes) => Ok(bytes.to_vec()),
                Place::OnDisk(path) => std::fs::read(path),
                Place::Missing => Err(not_bundled()),
            },
        }
    }

    /// The text of the app file at `path` (absolute, or relative to the app dir).
    pub fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        match &self.source {
            Source::Disk => std::fs::read_to_string(self.dir.join(path)),
            Source::Bundle(_) => String::from_utf8(self.read(path)?).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "stream did not contain valid UTF-8",
                )
            }),
        }
    }

    /// Whether `path` (absolute, or relative to the app dir) is a file.
    pub fn is_file(&self, path: &Path) -> bool {
        match &self.source {
            Source::Disk => self.dir.join(path).is_file(),
            Source::Bundle(archive) => match self.place(archive, path) {
                Place::Bundled(_) => true,
                Place::OnDisk(path) => path.is_file(),
                Place::Missing => false,
            },
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
        if let Source::Bundle(_) = self.source {
            return Vec::new();
        }
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
        match &self.source {
            Source::Disk => self.scan_disk(&mut scan),
            Source::Bundle(archive) => self.scan_archive(archive, &mut scan),
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

    /// The files of a bundle, sorted by the rules [`AppFiles::classify`] shares with the
    /// walk of the disk (the bundle holds only files that walk found), and the host files
    /// of the folder it runs in.
    fn scan_archive(&self, archive: &Archive, scan: &mut Scan) {
        let names = archive.app.keys().map(String::as_str);
        let names = names.filter(|name| !HOST_FILES.contains(name));
        for name in names.chain(HOST_FILES) {
            let path = self.dir.join(name);
            if HOST_FILES.contains(&name) && !path.is_file() {
                continue;
            }
            match self.classify(&path) {
                Some(Kind::PagesEntry) | None => {}
                Some(kind) => scan.push(kind, path, &self.dir),
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

/// A file a bundled app does not have.
fn not_bundled() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, "not in the bundle")
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


/// `path` with every symlink followed, if that is inside `root` and names no hidden file:
/// what `public/` serves, and what a bundle takes of it.
pub fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let real = path.canonicalize().ok()?;
    let relative = real.strip_prefix(root).ok()?;
    let visible = relative.components().all(|c| match c {
        std::path::Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
        _ => false,
    });
    visible.then_some(real)
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

    #[test]
    fn a_bundle_is_scanned_and_read_like_the_folder_it_came_from() {
        let dir = app();
        std::fs::write(dir.path().join("pages/api/index.rhai"), "res.send(1)").unwrap();
        let disk = AppFiles::open(dir.path());
        let mut archive = Archive::default();
        for file in &disk.scan().files {
            if file.kind != Kind::Env && file.kind != Kind::TestEnv {
                let bytes = disk.read(&file.path).unwrap();
                archive.app.insert(file.display.clone(), bytes);
            }
        }
        // It runs elsewhere, with a .env of its own there.
        let there = tempfile::tempdir().unwrap();
        std::fs::write(there.path().join(".env"), "B=2\n").unwrap();
        let bundled = AppFiles::bundled(there.path(), archive);
        let scan = bundled.scan();
        for kind in [
            Kind::Route,
            Kind::Middleware,
            Kind::Module,
            Kind::Migration,
            Kind::Job,
            Kind::Config,
        ] {
            assert_eq!(found(&scan, kind), found(&disk.scan(), kind), "{kind:?}");
        }
        assert_eq!(found(&scan, Kind::Env), [".env"]);
        assert!(found(&scan, Kind::TestEnv).is_empty());
        let route = there.path().join("pages/api/index.rhai");
        assert_eq!(bundled.read_to_string(&route).unwrap(), "res.send(1)");
        assert_eq!(bundled.read_to_string(Path::new(".env")).unwrap(), "B=2\n");
        assert!(bundled.is_file(Path::new("rhapi.toml")));
        assert!(!bundled.is_file(Path::new("pages/api")));
        assert!(!bundled.is_file(Path::new("pages/api/../../etc/passwd")));
        assert_eq!(
            bundled
                .read(Path::new("pages/api/gone.rhai"))
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::NotFound
        );
        assert!(bundled.has_folder("migrations") && !bundled.has_folder("pages/api/users/x"));
        assert!(bundled.watch_roots().is_empty());
    }
}
