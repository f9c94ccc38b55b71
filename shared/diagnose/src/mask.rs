//! Hiding secret-looking values in log lines before they are shown as evidence.

use once_cell::sync::Lazy;
use regex::Regex;

/// What replaces a hidden value.
pub const MASK: &str = "****";

/// Token shapes that are secrets wherever they appear.
static TOKENS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(concat!(
        r"ghp_[A-Za-z0-9]{20,}|gho_[A-Za-z0-9]{20,}|ghs_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}",
        r"|glpat-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}",
        r"|sk-(?:proj-|live_|test_)?[A-Za-z0-9_-]{20,}|(?:rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}",
        r"|xox[abprs]-[A-Za-z0-9-]{10,}|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ))
    .expect("token pattern")
});

/// `scheme://user:password@host`: the password.
static URL_PASSWORD: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@").expect("url"));

/// `NAME=value`, `name: value`, `"name": "value"` where the name looks like a credential,
/// and `Bearer value`.
static ASSIGNMENT: Lazy<Regex> = Lazy::new(|| {
    Regex::new(concat!(
        r#"(?i)(\b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth|signature)[\w.-]*["']?\s*[=:]\s*["']?)"#,
        r#"((?:(?:bearer|basic)\s+)?[^\s"',;&]+)"#,
        r"|(\bbearer\s+)([A-Za-z0-9._~+/=-]+)",
    ))
    .expect("assignment pattern")
});

/// `line` with every secret-looking value replaced by [`MASK`].
pub fn mask_secrets(line: &str) -> String {
    let line = TOKENS.replace_all(line, MASK);
    let line = URL_PASSWORD.replace_all(&line, format!("${{1}}{MASK}@"));
    ASSIGNMENT
        .replace_all(&line, |caps: &regex::Captures| {
            if let Some(name) = caps.get(1) {
                format!("{}{MASK}", name.as_str())
            } else {
                format!("{}{MASK}", &caps[3])
            }
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_assignments_urls_and_tokens() {
        assert_eq!(
            mask_secrets("SECRET_KEY=abc123 DEBUG=1"),
            "SECRET_KEY=**** DEBUG=1"
        );
        assert_eq!(
            mask_secrets("connecting to postgres://app:hunter2@db:5432/app"),
            "connecting to postgres://app:****@db:5432/app"
        );
        assert_eq!(
            mask_secrets("token ghp_abcdefghijklmnopqrstuvwxyz0123456789 used"),
            "token **** used"
        );
        assert_eq!(
            mask_secrets("Authorization: Bearer abc.def.ghi"),
            "Authorization: ****"
        );
        assert_eq!(
            mask_secrets("ModuleNotFoundError: No module named 'cv2'"),
            "ModuleNotFoundError: No module named 'cv2'"
        );
    }
}
