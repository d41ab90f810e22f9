//! `rhapi bundle [DIR] -o FILE`: the app and the rhapi binary in one executable
//! (docs/deploy.md, "One file to deploy"). What goes in is what the app's scan finds
//! (routes, middleware, modules, jobs, migrations, `rhapi.toml`, `.env.example`) and the
//! files of the public folder; nothing else of the folder, so never `.env`, `.env.local`,
//! `.env.test`, `data/` or `tests/`. The format is [`crate::bundle`]'s.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::app_files::{inside, AppFiles, Kind};
use crate::bundle::Archive;
use crate::config::ConfigError;
use crate::settings::Settings;
use crate::tools::NotAnApp;

/// Why no bundle was written.
#[derive(Debug, thiserror::Error)]
pub enum BundleCommandError {
    #[error(transparent)]
    NotAnApp(#[from] NotAnApp),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read {what}: {source}")]
    Unreadable {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}: a file name that is not UTF-8 cannot be bundled; rename it")]
    NotUtf8(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn unreadable(what: &Path) -> impl FnOnce(std::io::Error) -> BundleCommandError + '_ {
    move |source| BundleCommandError::Unreadable {
        what: what.display().to_string(),
        source,
    }
}

/// The files of the app in `dir` (which holds `pages/api`), read into an archive.
pub fn collect(dir: &Path) -> Result<Archive, BundleCommandError> {
    crate::tools::require_pages_api(dir)?;
    let files = AppFiles::open(dir);
    let scan = files.scan();
    if let Some(err) = scan.pages_error {
        return Err(unreadable(&dir.join("pages"))(err));
    }
    if let Some(err) = scan.migrations_error {
        return Err(unreadable(&dir.join("migrations"))(err));
    }
    let mut archive = Archive::default();
    let kinds = [
        Kind::Route,
        Kind::Middleware,
        Kind::Module,
        Kind::Job,
        Kind::Migration,
        Kind::Config,
        Kind::Env,
    ];
    for file in kinds.into_iter().flat_map(|kind| scan.of(kind)) {
        // Of the dotenv files, only the list of keys; the values stay where the app runs.
        if file.kind == Kind::Env && file.display != ".env.example" {
            continue;
        }
        let bytes = files.read(&file.path).map_err(unreadable(&file.path))?;
        archive.app.insert(file.display.clone(), bytes);
    }
    let settings = crate::config::load(dir, None, &Settings::default())?;
    archive.public = public_files(dir, &settings.public.dir)?;
    Ok(archive)
}

/// The files of the public folder `configured` names, as the server would serve them: no
/// hidden names, links followed only to files inside the folder (the folder itself may be
/// a link, as when served).
fn public_files(
    dir: &Path,
    configured: &str,
) -> Result<BTreeMap<String, Vec<u8>>, BundleCommandError> {
    let mut found = BTreeMap::new();
    let Ok(root) = dir.join(configured).canonicalize() else {
        return Ok(found); // no public folder
    };
    let mut seen = HashSet::from([root.clone()]);
    walk_public(&root, &root, "", &mut seen, &mut found)?;
    Ok(found)
}

fn walk_public(
    root: &Path,
    folder: &Path,
    prefix: &str,
    seen: &mut HashSet<PathBuf>,
    found: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), BundleCommandError> {
    let entries = std::fs::read_dir(folder).map_err(unreadable(folder))?;
    for entry in entries {
        let entry = entry.map_err(unreadable(folder))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(BundleCommandError::NotUtf8(path.display().to_string()));
        };
        if name.starts_with('.') {
            continue; // never served
        }
        let Some(real) = inside(root, &path) else {
            continue; // a link out of the folder, or a broken one: never served either
        };
        let meta = std::fs::metadata(&real).map_err(unreadable(&path))?;
        let name = format!("{prefix}{name}");
        if meta.is_dir() {
            if seen.insert(real.clone()) {
                walk_public(root, &real, &format!("{name}/"), seen, found)?;
            }
        } else if meta.is_file() {
            let bytes = std::fs::read(&real).map_err(unreadable(&path))?;
            found.insert(name, bytes);
        }
    }
    Ok(())
}

/// Writes the running rhapi binary with `archive` to `out` (executable; replaced whole,
/// never left half written); returns its size in bytes.
pub fn write(archive: &Archive, out: &Path) -> Result<u64, BundleCommandError> {
    let failed = |source| BundleCommandError::Write {
        path: out.display().to_string(),
        source,
    };
    let program = std::fs::read("/proc/self/exe")
        .or_else(|_| std::fs::read(std::env::current_exe()?))
        .map_err(unreadable(Path::new("the rhapi executable")))?;
    let bytes = crate::bundle::assemble(&program, archive);
    let mut partial = out.as_os_str().to_os_string();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = PathBuf::from(partial);
    let written = std::fs::write(&partial, &bytes)
        .and_then(|()| std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755)))
        .and_then(|()| std::fs::rename(&partial, out));
    if let Err(err) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(failed(err));
    }
    Ok(bytes.len() as u64)
}
