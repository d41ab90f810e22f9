//! Where `import "..."` points: relative to the importing file's folder, `.rhai` added when
//! the path has no extension, and confined to the app's `pages/`. The runtime resolver
//! (`script::modules::PagesResolver`) and `rhapi openapi` both resolve through this.

use std::path::{Component, Path, PathBuf};

/// An import that cannot be followed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The importing file has no folder (an empty path).
    #[error("import \"{0}\": the importing file has no folder")]
    NoBase(String),
    /// The module would be outside `pages/`.
    #[error("import \"{0}\" leaves pages/: modules must live inside pages/")]
    LeavesPages(String),
}

/// Resolves imports for the app in one folder.
#[derive(Clone, Debug)]
pub struct ImportResolver {
    pages_dir: PathBuf,
}

impl ImportResolver {
    /// The resolver of the app in `app_dir` (modules live under `app_dir/pages`).
    pub fn new(app_dir: &Path) -> Self {
        ImportResolver {
            pages_dir: app_dir.join("pages"),
        }
    }

    /// The module file `import "path"` in the file `importer` reads.
    pub fn resolve(&self, importer: &Path, path: &str) -> Result<PathBuf, ImportError> {
        let target = module_path(importer, path).ok_or_else(|| ImportError::NoBase(path.into()))?;
        if !target.starts_with(&self.pages_dir) {
            return Err(ImportError::LeavesPages(path.to_string()));
        }
        Ok(target)
    }
}

/// `path` relative to the folder of `importer`, with `.rhai` when it has no extension,
/// `.` and `..` resolved (an absolute `path` stays itself). `None` when `importer` has no
/// folder.
pub fn module_path(importer: &Path, path: &str) -> Option<PathBuf> {
    let mut target = importer.parent()?.join(path);
    if target.extension().is_none() {
        target.set_extension("rhai");
    }
    Some(normalize(&target))
}

/// Resolves `.` and `..` without touching the file system (the file may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_resolve_relative_to_the_importer_inside_pages() {
        let resolver = ImportResolver::new(Path::new("/app"));
        let route = Path::new("/app/pages/api/users/[id].rhai");
        assert_eq!(
            resolver.resolve(route, "../_lib/auth"),
            Ok(PathBuf::from("/app/pages/api/_lib/auth.rhai"))
        );
        assert_eq!(
            resolver.resolve(route, "./v.rhai"),
            Ok(PathBuf::from("/app/pages/api/users/v.rhai"))
        );
        // An extension of its own is kept.
        assert_eq!(
            resolver.resolve(route, "data.v2"),
            Ok(PathBuf::from("/app/pages/api/users/data.v2"))
        );
        assert_eq!(
            resolver.resolve(route, "../../../secret"),
            Err(ImportError::LeavesPages("../../../secret".into()))
        );
        assert_eq!(
            resolver.resolve(route, "/etc/passwd"),
            Err(ImportError::LeavesPages("/etc/passwd".into()))
        );
        assert_eq!(
            resolver.resolve(Path::new(""), "x"),
            Err(ImportError::NoBase("x".into()))
        );
    }
}
