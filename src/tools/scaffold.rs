//! `rhapi new DIR`: a starter app that `rhapi dev` serves and `rhapi test` passes. The
//! files are the templates under `src/scaffold/`, compiled into the binary.

use std::path::{Path, PathBuf};

/// Every file of the starter app: its path in the new app, and its text. (`.env.example`,
/// `.gitignore` and `.dockerignore` are stored without the dot, so that tools ignore them in
/// this repo.)
const FILES: &[(&str, &str)] = &[
    (
        "pages/api/hello.rhai",
        include_str!("../scaffold/pages/api/hello.rhai"),
    ),
    (
        "pages/api/_middleware.rhai",
        include_str!("../scaffold/pages/api/_middleware.rhai"),
    ),
    (
        "jobs/announce.rhai",
        include_str!("../scaffold/jobs/announce.rhai"),
    ),
    (
        "jobs/cleanup.rhai",
        include_str!("../scaffold/jobs/cleanup.rhai"),
    ),
    (
        "public/index.html",
        include_str!("../scaffold/public/index.html"),
    ),
    (
        "migrations/001_messages.sql",
        include_str!("../scaffold/migrations/001_messages.sql"),
    ),
    (
        "tests/hello.test.rhai",
        include_str!("../scaffold/tests/hello.test.rhai"),
    ),
    (".env.example", include_str!("../scaffold/env.example")),
    (".gitignore", include_str!("../scaffold/gitignore")),
    ("rhapi.toml", include_str!("../scaffold/rhapi.toml")),
    ("README.md", include_str!("../scaffold/README.md")),
    (
        "deploy/rhapi.service",
        include_str!("../scaffold/deploy/rhapi.service"),
    ),
    ("Dockerfile", include_str!("../scaffold/Dockerfile")),
    (".dockerignore", include_str!("../scaffold/dockerignore")),
];

/// Why `rhapi new` wrote nothing (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{0} exists and is not empty; nothing was written (choose a new folder name)")]
    NotEmpty(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Creates the starter app in `dir`, which must not exist or be an empty folder; returns
/// the files written.
pub fn create(dir: &Path) -> Result<Vec<&'static str>, ScaffoldError> {
    let shown = dir.display().to_string();
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(dir)
                .map(|mut entries| entries.next().is_none())
                .unwrap_or(false);
        if !empty {
            return Err(ScaffoldError::NotEmpty(shown));
        }
    }
    let name = app_name(dir);
    for (rel, text) in FILES {
        let path: PathBuf = dir.join(rel);
        let failed = |source| ScaffoldError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let text = text.replace("{{name}}", &name);
        std::fs::write(&path, text).map_err(failed)?;
    }
    Ok(FILES.iter().map(|(rel, _)| *rel).collect())
}

/// The folder's name, for the README's title.
fn app_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "my-app".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The starter's routes, modules and tests compile (a template typo fails here, not in
    /// a newcomer's first `rhapi dev`).
    #[test]
    fn every_script_template_compiles() {
        let engine = crate::script::engine::for_tests();
        for (rel, text) in FILES.iter().filter(|(rel, _)| rel.ends_with(".rhai")) {
            if let Err(err) = engine.compile(*text) {
                panic!("{rel}: {err}");
            }
        }
    }

    #[test]
    fn rhapi_toml_is_all_comments() {
        let (_, text) = FILES.iter().find(|(rel, _)| *rel == "rhapi.toml").unwrap();
        for line in text.lines() {
            let line = line.trim();
            assert!(line.is_empty() || line.starts_with('#'), "{line}");
        }
    }

    /// The deploy files name the app, run `rhapi start` as a user of its own, and keep secrets
    /// and state out of the image.
    #[test]
    fn deploy_files_run_start_as_their_own_user() {
        let text = |rel: &str| {
            let (_, text) = FILES.iter().find(|(r, _)| *r == rel).unwrap();
            text.replace("{{name}}", "shop")
        };
        let unit = text("deploy/rhapi.service");
        for line in [
            "ExecStart=/usr/local/bin/rhapi start",
            "Restart=on-failure",
            "User=shop",
            "WorkingDirectory=/srv/shop",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=/srv/shop/data",
            "PrivateTmp=yes",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line}");
        }
        assert!(unit.contains("LISTEN_FDS") && unit.contains("ListenStream="));
        let docker = text("Dockerfile");
        for line in [
            "COPY --chmod=0755 shop.bundle /usr/local/bin/shop",
            "USER app",
            "EXPOSE 3000",
            "VOLUME [\"/app/data\"]",
            "CMD [\"/usr/local/bin/shop\", \"start\"]",
        ] {
            assert!(docker.lines().any(|l| l == line), "{line}");
        }
        assert_eq!(
            text(".dockerignore")
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            ["*", "!shop.bundle"]
        );
    }
}
