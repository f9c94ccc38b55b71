//! How DevGem's names become Google's: secret ids, label values, image names. One place, so
//! the Secret Manager adapter and the Cloud Run service refer to the same secret.

/// The Secret Manager secret id of a secrets-port key: `deployments/d-1/env/STRIPE_KEY` ->
/// `devgem-deployments-d-1-env-STRIPE_KEY` (letters, digits, `_` and `-`; at most 255).
pub fn secret_id(key: &str) -> String {
    let mapped: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut id = format!("devgem-{mapped}");
    id.truncate(255);
    id
}

/// A label value Google accepts: lowercase letters, digits, `_` and `-`, at most 63
/// characters (`octo/My.App` -> `octo-my-app`).
pub fn label_value(value: &str) -> String {
    let mut out: String = value
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(63);
    out
}

/// A label key: as a value, but starting with a lowercase letter and never empty.
pub fn label_key(key: &str) -> String {
    let value = label_value(key);
    match value.chars().next() {
        Some(c) if c.is_ascii_lowercase() => value,
        _ => {
            let mut key = format!("k-{value}");
            key.truncate(63);
            key
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_keys_become_valid_secret_ids() {
        assert_eq!(
            secret_id("deployments/0193-ab/env/STRIPE_KEY"),
            "devgem-deployments-0193-ab-env-STRIPE_KEY"
        );
        assert!(secret_id(&"x".repeat(400)).len() <= 255);
    }

    #[test]
    fn labels_follow_googles_rules() {
        assert_eq!(label_value("octo/My.App"), "octo-my-app");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
        assert_eq!(label_key("devgem.deployment"), "devgem-deployment");
        assert_eq!(label_key("9lives"), "k-9lives");
    }
}
