//! Sign-in in a browser: `GET /auth/{github,google}/login` sends the browser to the provider
//! with a `state` (and Google a `nonce`) kept in a short-lived cookie; `GET
//! /auth/{provider}/callback` checks the state against that cookie (CSRF), completes the
//! sign-in, finds or makes the account (signing in with a second provider while signed in
//! links it), keeps GitHub's token in the secrets port and sets the session cookie; `POST
//! /auth/logout` ends the session. `GET|PATCH /api/me` shows the account and sets its
//! preferences.
//!
//! The session cookie holds an API token made for the sign-in, so it is checked like any
//! token (by its hash). Cookies are HttpOnly and SameSite=Lax, and Secure unless DevGem's
//! public URL is on loopback.

use crate::auth::constant_time_eq;
use crate::{Api, app_error};
use devgem_app::clock::random_bytes;
use devgem_domain::{
    Account, ApiToken, EnvVarName, Identity, IdentityProvider, LinkedIdentity, Preferences, Region,
    TokenHash, TokenId, UserId, identity_key,
};
use devgem_http::{Request, Response, error, json};
use devgem_ports::SecretValue;
use devgem_signin::{Callback, ProviderKind, SignInError};
use http::{HeaderValue, Method, StatusCode, header};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The cookie that carries a sign-in's `provider.state.nonce` from login to callback.
const FLOW_COOKIE: &str = "devgem_signin";
/// The cookie that carries the session.
pub(crate) const SESSION_COOKIE: &str = "devgem_session";
/// A sign-in must come back within this long.
const FLOW_MAX_AGE_SECS: u32 = 600;
/// A session lasts this long.
const SESSION_MAX_AGE_SECS: u32 = 30 * 24 * 3600;

/// The providers people may sign in with, and where the browser comes back to.
#[derive(Clone)]
pub struct SignIn {
    pub providers: Vec<Arc<dyn devgem_signin::IdentityProvider>>,
    /// DevGem's own URL as browsers reach it (`DEVGEM_PUBLIC_URL`): the base of the
    /// callbacks, and whether cookies need `Secure`.
    pub public_url: String,
}

impl SignIn {
    fn provider(&self, kind: ProviderKind) -> Option<&Arc<dyn devgem_signin::IdentityProvider>> {
        self.providers.iter().find(|p| p.kind() == kind)
    }

    fn redirect_uri(&self, kind: ProviderKind) -> String {
        format!(
            "{}/auth/{kind}/callback",
            self.public_url.trim_end_matches('/')
        )
    }

    /// Browsers drop `Secure` cookies over plain http, which is fine only on loopback.
    fn secure(&self) -> bool {
        !is_loopback_url(&self.public_url)
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: u32) -> HeaderValue {
        let secure = if self.secure() { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        ))
        .expect("cookie values are URL-safe")
    }
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host
        .rsplit_once(':')
        .filter(|(h, port)| !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The value of cookie `name` in a request.
pub(crate) fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A sign-in's state or nonce: [`random_bytes`], hex-encoded.
fn random_hex() -> String {
    random_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn redirect(to: &str) -> Response {
    let mut res = json(StatusCode::FOUND, &serde_json::json!({"redirect": to}));
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/")),
    );
    res
}

fn signin_error(e: &SignInError) -> Response {
    let (status, code, hint) = match e {
        SignInError::Refused { .. } => (
            StatusCode::FORBIDDEN,
            "signin_refused",
            "start again at /auth/{provider}/login and allow DevGem's access",
        ),
        SignInError::BadCallback { .. } => (
            StatusCode::BAD_REQUEST,
            "signin_invalid",
            "start again at /auth/{provider}/login in this browser",
        ),
        SignInError::Provider { .. } => (
            StatusCode::BAD_GATEWAY,
            "signin_provider_failed",
            "try again; if it keeps failing, check the OAuth client's id, secret and callback URL",
        ),
    };
    error(status, code, e.to_string(), Some(hint.into()))
}

fn domain_provider(kind: ProviderKind) -> IdentityProvider {
    match kind {
        ProviderKind::Github => IdentityProvider::Github,
        ProviderKind::Google => IdentityProvider::Google,
    }
}

/// The secrets-port key of an account's GitHub token.
pub fn github_token_key(user: &UserId) -> String {
    devgem_app::keys::github_token(user.as_str())
}

impl Api {
    /// `GET /auth/{provider}/login|callback`, `POST /auth/logout`.
    pub(crate) async fn auth_route(
        &self,
        req: Request,
        method: &Method,
        rest: &[&str],
    ) -> Response {
        let Some(signin) = &self.signin else {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "sign-in is not enabled on this server",
                Some("set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET (or GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)".into()),
            );
        };
        match (method, rest) {
            (&Method::POST, ["logout"]) => self.logout(signin, &req).await,
            (&Method::GET, [provider, step @ ("login" | "callback")]) => {
                let Some(kind) = ProviderKind::from_path(provider) else {
                    return error(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        format!("no sign-in provider {provider:?}"),
                        Some("use github or google".into()),
                    );
                };
                let Some(p) = signin.provider(kind) else {
                    return error(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        format!("sign-in with {kind} is not configured on this server"),
                        None,
                    );
                };
                if *step == "login" {
                    login(signin, p.as_ref())
                } else {
                    self.callback(signin, p.as_ref(), &req)
                        .await
                        .unwrap_or_else(|res| res)
                }
            }
            _ => error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route for {method} /auth/{}", rest.join("/")),
                None,
            ),
        }
    }

    async fn callback(
        &self,
        signin: &SignIn,
        provider: &dyn devgem_signin::IdentityProvider,
        req: &Request,
    ) -> Result<Response, Response> {
        let kind = provider.kind();
        let callback = Callback::from_query(kind, req.uri().query().unwrap_or(""))
            .map_err(|e| signin_error(&e))?;
        // The state must be the one this browser was sent off with.
        let flow = cookie(req, FLOW_COOKIE).unwrap_or_default();
        let mut parts = flow.splitn(3, '.');
        let (flow_kind, state, nonce) = (parts.next(), parts.next(), parts.next());
        let matches = flow_kind == Some(kind.as_str())
            && state.is_some_and(|s| constant_time_eq(s.as_bytes(), callback.state.as_bytes()));
        let (true, Some(nonce)) = (matches, nonce) else {
            return Err(signin_error(&SignInError::BadCallback {
                provider: kind,
                reason: "its state does not match the one this browser started with (a forged, replayed or stale callback)".into(),
            }));
        };
        let signed_in = provider
            .complete(&callback.code, &signin.redirect_uri(kind), nonce)
            .await
            .map_err(|e| signin_error(&e))?;

        let store = &self.services.core.store;
        let now = self.services.core.clock.now();
        let identity = LinkedIdentity {
            provider: domain_provider(kind),
            subject: signed_in.profile.subject.clone(),
            login: signed_in.profile.login.clone(),
        };
        let key = identity_key(identity.provider, &identity.subject);
        // Signed in already (another provider): this identity joins that account.
        let current = match self.session_identity(req).await {
            Some(user) => store
                .get_account(&user)
                .await
                .map_err(|e| app_error(e.into()))?,
            None => None,
        };
        let existing = match current {
            Some(a) => Some(a),
            None => store
                .account_for_identity(&key)
                .await
                .map_err(|e| app_error(e.into()))?,
        };
        let mut account = match existing {
            Some(a) => a,
            None => Account::new(identity.clone(), now).map_err(|e| {
                error(
                    StatusCode::BAD_GATEWAY,
                    "signin_provider_failed",
                    format!("{kind} named the person with an unusable id: {e}"),
                    None,
                )
            })?,
        };
        account.link(identity);
        let p = &signed_in.profile;
        account.name = p.name.clone().or(account.name);
        account.email = p.email.clone().or(account.email);
        account.avatar_url = p.avatar_url.clone().or(account.avatar_url);
        store
            .put_account(&account)
            .await
            .map_err(|e| app_error(e.into()))?;
        if kind == ProviderKind::Github {
            self.services
                .secrets
                .put(
                    &github_token_key(&account.id),
                    &SecretValue::new(signed_in.access_token.clone()),
                )
                .await
                .map_err(|e| app_error(devgem_app::AppError::Unavailable(e.to_string())))?;
        }
        let (token, plain) = ApiToken::issue(
            TokenId::from_uuid(uuid::Uuid::new_v4()),
            account.id.clone(),
            random_bytes(),
            now,
        );
        store
            .put_token(&token)
            .await
            .map_err(|e| app_error(e.into()))?;
        tracing::info!(user = %account.id, provider = %kind, "signed in");
        let mut res = redirect("/api/me");
        let headers = res.headers_mut();
        headers.append(
            header::SET_COOKIE,
            signin.cookie(SESSION_COOKIE, plain.expose(), "/", SESSION_MAX_AGE_SECS),
        );
        headers.append(
            header::SET_COOKIE,
            signin.cookie(FLOW_COOKIE, "", "/auth", 0),
        );
        Ok(res)
    }

    /// The user of a valid session cookie, if the request has one.
    async fn session_identity(&self, req: &Request) -> Option<UserId> {
        let plain = cookie(req, SESSION_COOKIE)?;
        let token = self
            .services
            .core
            .store
            .token_by_hash(&TokenHash::of(&plain))
            .await
            .ok()??;
        Some(token.user)
    }

    async fn logout(&self, signin: &SignIn, req: &Request) -> Response {
        if let Some(plain) = cookie(req, SESSION_COOKIE)
            && let Ok(Some(token)) = self
                .services
                .core
                .store
                .token_by_hash(&TokenHash::of(&plain))
                .await
            && let Err(e) = self.services.core.store.revoke_token(&token.id).await
        {
            return app_error(e.into());
        }
        let mut res = json(StatusCode::OK, &serde_json::json!({"signed_out": true}));
        res.headers_mut().append(
            header::SET_COOKIE,
            signin.cookie(SESSION_COOKIE, "", "/", 0),
        );
        res
    }

    /// `GET /api/me`: who the caller is, their account and preferences.
    /// `PATCH /api/me` `{"preferences": {...}}`: sets the fields given and keeps the others
    /// (`null` resets a field).
    pub(crate) async fn me(
        &self,
        req: Request,
        method: &Method,
        identity: &Identity,
    ) -> Result<Response, Response> {
        let store = &self.services.core.store;
        let mut account = store
            .get_account(&identity.user)
            .await
            .map_err(|e| app_error(e.into()))?;
        if method == Method::PATCH {
            let body: MeBody = devgem_http::read_json(req, ME_BODY_LIMIT).await?;
            let mut a = account.unwrap_or_else(|| Account {
                id: identity.user.clone(),
                name: None,
                email: None,
                avatar_url: None,
                identities: Vec::new(),
                preferences: Preferences::default(),
                created_at: self.services.core.clock.now(),
            });
            let mut preferences = a.preferences.clone();
            body.preferences.apply(&mut preferences);
            check_preferences(&preferences)?;
            a.preferences = preferences;
            store
                .put_account(&a)
                .await
                .map_err(|e| app_error(e.into()))?;
            account = Some(a);
        }
        let github = account
            .as_ref()
            .and_then(|a| a.identity(IdentityProvider::Github))
            .map(|i| serde_json::json!({"id": i.subject, "login": i.login}));
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "user": identity.user,
                "role": identity.role,
                "name": account.as_ref().and_then(|a| a.name.clone()),
                "email": account.as_ref().and_then(|a| a.email.clone()),
                "avatar_url": account.as_ref().and_then(|a| a.avatar_url.clone()),
                "github": github,
                "identities": account.as_ref().map(|a| a.identities.clone()).unwrap_or_default(),
                "preferences": account.map(|a| a.preferences).unwrap_or_default(),
            }),
        ))
    }
}

/// The most a `PATCH /api/me` body may be.
pub(crate) const ME_BODY_LIMIT: usize = 16 * 1024;

/// `PATCH /api/me`'s body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MeBody {
    pub(crate) preferences: PreferencesPatch,
}

/// A change to the preferences, field by field: a field left out keeps its value, a field
/// set to `null` goes back to DevGem's default, any other value replaces it (`default_env`
/// as a whole map).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreferencesPatch {
    #[serde(default, deserialize_with = "present_region")]
    default_region: Option<Option<Region>>,
    #[serde(default, deserialize_with = "present")]
    default_public: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    default_env: Option<Option<BTreeMap<EnvVarName, String>>>,
}

impl PreferencesPatch {
    pub(crate) fn apply(self, preferences: &mut Preferences) {
        if let Some(region) = self.default_region {
            preferences.default_region = region;
        }
        if let Some(public) = self.default_public {
            preferences.default_public = public;
        }
        if let Some(env) = self.default_env {
            preferences.default_env = env.unwrap_or_default();
        }
    }
}

/// A field that is present (`Some`), possibly as `null` (`Some(None)`); serde's `default`
/// makes an absent one `None`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// As `present`, for a region, with the field named in the error (serde names only the value).
fn present_region<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Region>>, D::Error> {
    let raw: Option<String> = serde::Deserialize::deserialize(d)?;
    raw.map(|r| {
        Region::parse(&r).map_err(|e| serde::de::Error::custom(format!("default_region: {e}")))
    })
    .transpose()
    .map(Some)
}

/// Preferences hold no secret and only values a deployment can use.
pub(crate) fn check_preferences(p: &Preferences) -> Result<(), Response> {
    let bad = |message: String, hint: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_preferences",
            message,
            Some(hint.into()),
        )
    };
    // `default_region` is a `Region`: its shape was checked as the body was read.
    for (name, value) in &p.default_env {
        if devgem_plan::is_secret_name(name.as_str()) {
            return Err(bad(
                format!("{name} looks like a secret, and preferences are not a secret store"),
                "set it on each deployment, where its value goes to the secret store",
            ));
        }
        if value.len() > 4096 {
            return Err(bad(
                format!("the default value of {name} is over 4 KiB"),
                "keep default values short",
            ));
        }
    }
    if p.default_env.len() > 50 {
        return Err(bad(
            "more than 50 default variables".into(),
            "keep the defaults to what every deployment needs",
        ));
    }
    Ok(())
}

fn login(signin: &SignIn, provider: &dyn devgem_signin::IdentityProvider) -> Response {
    let kind = provider.kind();
    let (state, nonce) = (random_hex(), random_hex());
    let url = provider.authorize_url(&signin.redirect_uri(kind), &state, &nonce);
    let mut res = redirect(&url);
    res.headers_mut().append(
        header::SET_COOKIE,
        signin.cookie(
            FLOW_COOKIE,
            &format!("{}.{state}.{nonce}", kind.as_str()),
            "/auth",
            FLOW_MAX_AGE_SECS,
        ),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_except_on_loopback() {
        for (url, secure) in [
            ("http://127.0.0.1:8080", false),
            ("http://localhost:3000", false),
            ("http://[::1]:80", false),
            ("https://devgem.example.com", true),
            ("http://127.0.0.1.evil.example", true),
        ] {
            let s = SignIn {
                providers: vec![],
                public_url: url.into(),
            };
            assert_eq!(s.secure(), secure, "{url}");
        }
    }

    #[test]
    fn a_secret_is_refused_as_a_default_variable() {
        let mut p = Preferences::default();
        p.default_env.insert(
            devgem_domain::EnvVarName::parse("STRIPE_SECRET_KEY").unwrap(),
            "sk".into(),
        );
        assert!(check_preferences(&p).is_err());
        p.default_env.clear();
        p.default_region = Some(devgem_domain::Region::parse("europe-west1").unwrap());
        assert!(check_preferences(&p).is_ok());
    }
}
