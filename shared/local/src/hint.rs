//! Turning the output of a failed build or start into a fix a user can apply.
//!
//! Each rule is a substring to look for and the advice it earns; the first rule that matches
//! the output wins, so the more specific ones come first.

/// The advice for the output `text` of a failed command, if any rule recognises it.
pub(crate) fn for_output(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    if let Some(module) = after(text, "ModuleNotFoundError: No module named ") {
        let module = module.trim_matches(|c| c == '\'' || c == '"');
        let package = module.split('.').next().unwrap_or(module);
        return Some(format!(
            "the Python module `{package}` is missing: add it to requirements.txt (or your project's dependencies)"
        ));
    }
    if let Some(module) = after(text, "Error: Cannot find module ") {
        let module = module.trim_matches(|c| c == '\'' || c == '"');
        if !module.starts_with('.') && !module.starts_with('/') {
            return Some(format!(
                "the Node module `{module}` is missing: add it to \"dependencies\" in package.json"
            ));
        }
        return Some(format!(
            "the file `{module}` does not exist: check the start script and that the build produced it"
        ));
    }
    for (needle, hint) in RULES {
        if lower.contains(needle) {
            return Some((*hint).to_string());
        }
    }
    if let Some(program) = not_found_program(text) {
        return Some(format!(
            "`{program}` is not installed on this machine or not on PATH: install it, or add the package that provides it to your dependencies"
        ));
    }
    None
}

/// Lower-case substring, advice.
const RULES: &[(&str, &str)] = &[
    (
        "pg_config executable not found",
        "psycopg2 needs the PostgreSQL client library: install libpq-dev (apt install libpq-dev), or use psycopg2-binary / psycopg[binary]",
    ),
    (
        "mysql_config not found",
        "mysqlclient needs the MySQL client library: install default-libmysqlclient-dev and pkg-config, or use PyMySQL",
    ),
    (
        "python.h: no such file or directory",
        "a package compiles a C extension: install the Python headers (apt install python3-dev build-essential)",
    ),
    (
        "no module named ensurepip",
        "Python's venv support is missing: install it (apt install python3-venv)",
    ),
    (
        "ensurepip is not available",
        "Python's venv module is missing: install it (apt install python3-venv)",
    ),
    (
        "a different python",
        "a package does not support this Python version: pin a compatible version, or install the Python version the project needs",
    ),
    (
        "no matching distribution found",
        "pip found no release of a requirement for this Python version and platform: check the name and version pin in requirements.txt",
    ),
    (
        "could not open requirements file",
        "requirements.txt is not where the install command expects it: check the app folder",
    ),
    (
        "npm err! code eresolve",
        "npm found conflicting peer dependencies: fix the versions in package.json, or install with `npm install --legacy-peer-deps`",
    ),
    (
        "npm error code eresolve",
        "npm found conflicting peer dependencies: fix the versions in package.json, or install with `npm install --legacy-peer-deps`",
    ),
    (
        "missing script:",
        "package.json has no such script: add it under \"scripts\", or change the command",
    ),
    (
        "npm ci` can only install packages when your package.json and package-lock.json",
        "package-lock.json is out of date: run `npm install` and commit the lock file",
    ),
    (
        "gyp err!",
        "a native Node module failed to compile: install python3, make and g++ (apt install build-essential python3)",
    ),
    (
        "eaddrinuse",
        "the port is already in use: the app must listen on the port in the PORT environment variable, and only once",
    ),
    (
        "address already in use",
        "the port is already in use: the app must listen on the port in the PORT environment variable, and only once",
    ),
    (
        "no space left on device",
        "the disk is full: free some space and try again",
    ),
    (
        "err_require_esm",
        "a dependency is an ES module: use `import`, or pin the last CommonJS version of it",
    ),
];

/// The rest of the line after `marker`, trimmed.
fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.rfind(marker)? + marker.len();
    let rest = &text[start..];
    Some(rest.lines().next().unwrap_or("").trim())
}

/// The program named in a shell's "not found" message (`sh: 1: gunicorn: not found`,
/// `bash: gunicorn: command not found`).
fn not_found_program(text: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let line = line.trim();
        let rest = line
            .strip_suffix(": command not found")
            .or_else(|| line.strip_suffix(": not found"))?;
        let program = rest.rsplit(": ").next()?.trim();
        (!program.is_empty() && !program.contains(' ')).then(|| program.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_common_failures() {
        let check = |output: &str, want: &str| {
            let hint = for_output(output).unwrap_or_default();
            assert!(hint.contains(want), "{output:?} gave {hint:?}");
        };
        check("Error: pg_config executable not found.\n", "libpq-dev");
        check(
            "ModuleNotFoundError: No module named 'flask_cors'",
            "`flask_cors`",
        );
        check(
            "Error: Cannot find module 'express'\nRequire stack:",
            "`express`",
        );
        check("sh: 1: gunicorn: not found", "`gunicorn` is not installed");
        check("bash: line 1: uvicorn: command not found", "`uvicorn`");
        check("npm ERR! code ERESOLVE", "legacy-peer-deps");
        check(
            "ERROR: Ignored the following versions that require a different python version: 2.0 Requires-Python >=3.12\nERROR: No matching distribution found for foo==2.0",
            "Python version",
        );
        check("npm error Missing script: \"build\"", "scripts");
        assert_eq!(for_output("all good"), None);
    }
}
