//! When `poetry install` fails natively, the dependencies the project declares are installed
//! with pip instead. Why: Poetry talks only to PyPI's per-release JSON API (or to sources named
//! in pyproject.toml), so it fails behind an index mirror or proxy that pip, configured by
//! pip.conf or `PIP_INDEX_URL`, gets through. The container build keeps using Poetry.

/// Whether a build step runs `poetry install`.
pub(crate) fn is_poetry_install(step: &str) -> bool {
    let words: Vec<&str> = step.split_whitespace().collect();
    words.windows(2).any(|w| w == ["poetry", "install"])
}

/// The script that lists the project's requirements (stdout) and poetry.lock's pins (argv[1]).
pub(crate) const REQUIREMENTS_SCRIPT: &str = include_str!("poetry_requirements.py");

/// The shell command of the fallback, run in the app folder with the build's environment:
/// `dir` holds the script and receives the requirement and constraint files.
pub(crate) fn pip_fallback_command(dir: &std::path::Path) -> String {
    let q = |name: &str| shell_quote(&dir.join(name).to_string_lossy());
    format!(
        "python {script} {constraints} > {requirements} && pip install -r {requirements} -c {constraints}",
        script = q("poetry_requirements.py"),
        constraints = q("poetry-constraints.txt"),
        requirements = q("poetry-requirements.txt"),
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_poetry_install_step() {
        assert!(is_poetry_install("poetry install --no-root"));
        assert!(is_poetry_install("  poetry install"));
        assert!(is_poetry_install(
            "pip install poetry && POETRY_VIRTUALENVS_CREATE=false poetry install --only main"
        ));
        assert!(!is_poetry_install("pip install poetry"));
        assert!(!is_poetry_install("poetry run gunicorn app:app"));
    }

    #[test]
    fn quotes_paths_for_the_shell() {
        let cmd = pip_fallback_command(std::path::Path::new("/b/it's here/.devgem"));
        assert!(cmd.contains(r"'/b/it'\''s here/.devgem/poetry_requirements.py'"));
        assert!(cmd.ends_with("-c '/b/it'\\''s here/.devgem/poetry-constraints.txt'"));
    }
}
