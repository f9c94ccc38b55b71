//! The source policy: which git URLs, branches and folders a deployment may name, and which
//! addresses a clone may connect to. Pure: the callers resolve names and pass the addresses in.
//!
//! Every source is hostile until it passes here. A URL is parsed once, strictly (no
//! whitespace, no credentials, no percent-encoding or unusual IP forms in the host), and is
//! then either on the allowed list (`DEVGEM_ALLOWED_SOURCE_HOSTS`, trusted as written) or
//! refused, with a reason and a fix. `*` on the list allows any public host: its name is then
//! resolved by the caller and every address checked with [`SourcePolicy::check_addresses`],
//! both when the request is made and again when git connects (pinned to the checked address).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The setting that lists the allowed source hosts.
pub const SETTING: &str = "DEVGEM_ALLOWED_SOURCE_HOSTS";

/// The longest source text accepted.
const MAX_SOURCE_LEN: usize = 2048;

/// How a clone reaches its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    /// Plain http: only to a host listed with `http://`.
    Http,
    /// `ssh://` or scp-like `user@host:path`: only to a listed host.
    Ssh,
    /// `git://`, unencrypted and unauthenticated: only to a host listed with `git://`.
    Git,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
            Scheme::Ssh => 22,
            Scheme::Git => 9418,
        }
    }
}

/// A host as written in a URL: a name (lowercased) or an IP address in its usual form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A remote git URL that parsed strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitUrl {
    pub scheme: Scheme,
    pub host: Host,
    /// The port written in the URL, if any.
    pub port: Option<u16>,
    /// The ssh user (`git` in `git@github.com:a/b`); never set for http(s).
    pub user: Option<String>,
    /// Starts with `/`, or is empty (scp-like paths are stored with a leading `/` too).
    pub path: String,
    /// Written scp-like (`user@host:path`), so it is given back to git that way.
    scp_like: bool,
}

impl GitUrl {
    /// The port a connection uses.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// The URL to give git: rebuilt from the parsed parts, so git reads what was checked.
    pub fn to_git_url(&self) -> String {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        match self.scheme {
            Scheme::Ssh if self.scp_like => {
                format!("{user}{}:{}", self.host, self.path.trim_start_matches('/'))
            }
            Scheme::Ssh => format!("ssh://{user}{}{port}{}", self.host, self.path),
            Scheme::Https => format!("https://{}{port}{}", self.host, self.path),
            Scheme::Http => format!("http://{}{port}{}", self.host, self.path),
            Scheme::Git => format!("git://{}{port}{}", self.host, self.path),
        }
    }
}

/// What a source text names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A folder on the machine that runs the analyze stage.
    LocalPath,
    /// A `file://` repository on that machine: allowed only where local paths are.
    FileUrl,
    /// A repository on an allowed host.
    Remote(GitUrl),
}

/// The kinds of address a clone never connects to unless its host is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    /// RFC 1918, fc00::/7, and 100.64/10 (carrier-grade NAT).
    Private,
    /// 169.254/16 (where cloud metadata servers answer) and fe80::/10.
    LinkLocal,
    Multicast,
    Unspecified,
    /// 0/8, 240/4, broadcast, documentation and benchmarking ranges.
    Reserved,
}

impl AddressClass {
    fn describe(self) -> &'static str {
        match self {
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private network address",
            AddressClass::LinkLocal => "a link-local address (where cloud metadata servers answer)",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Unspecified => "the unspecified address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// The class of `ip`, when it is one a clone must not reach; `None` for a public address.
pub fn address_class(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() {
        Some(AddressClass::Unspecified)
    } else if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some(AddressClass::Private)
    } else if ip.is_link_local() {
        Some(AddressClass::LinkLocal)
    } else if ip.is_multicast() {
        Some(AddressClass::Multicast)
    } else if a == 0
        || a >= 240
        || ip.is_documentation()
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && c == 0)
    {
        Some(AddressClass::Reserved)
    } else {
        None
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<AddressClass> {
    // An IPv4 address carried in IPv6 (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64
    // 64:ff9b::a.b.c.d) reaches that IPv4 address.
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (seg[..6] == [0; 6] && seg[6] != 0) {
        let [a, b] = seg[6].to_be_bytes();
        let [c, d] = seg[7].to_be_bytes();
        return v4_class(Ipv4Addr::new(a, b, c, d));
    }
    if ip.is_unspecified() {
        Some(AddressClass::Unspecified)
    } else if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if seg[0] & 0xfe00 == 0xfc00 {
        Some(AddressClass::Private)
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Some(AddressClass::LinkLocal)
    } else if ip.is_multicast() {
        Some(AddressClass::Multicast)
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Some(AddressClass::Reserved)
    } else {
        None
    }
}

/// Why a source was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    TooLong,
    /// Whitespace or control characters anywhere in the text.
    StrayCharacters,
    /// Starts with `-`, so git would read it as an option.
    OptionInjection,
    /// `ext::`, `fd::` or another `transport::address`.
    GitTransport,
    /// `git://`: unencrypted and unauthenticated.
    GitProtocol,
    UnsupportedScheme,
    Credentials,
    /// Not a valid host name, or one written with percent-encoding, brackets or backslashes.
    BadHost,
    /// An IP address in a decimal, octal or hex form.
    ObscureAddress,
    Forbidden(AddressClass),
    MetadataHost,
    /// A host that resolves to nothing.
    Unresolved,
    NotListed,
    /// Plain http to a host listed for https only.
    PlainHttp,
    /// ssh to a host that is not listed.
    Ssh,
    BadBranch,
    BadFolder,
}

/// A refusal a user can act on: what was wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub cause: Cause,
    pub reason: String,
    pub hint: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the source was refused: {}", self.reason)
    }
}

impl std::error::Error for Refusal {}

fn refuse(cause: Cause, reason: impl Into<String>, hint: impl Into<String>) -> Refusal {
    Refusal {
        cause,
        reason: reason.into(),
        hint: hint.into(),
    }
}

/// One entry of the allowed list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: Host,
    port: Option<u16>,
    /// Written `http://host`: plain http is allowed to it too.
    plain_http: bool,
    /// Written `git://host`: the git protocol is allowed to it too.
    git_protocol: bool,
}

/// Which remote hosts sources may come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePolicy {
    hosts: Vec<AllowedHost>,
    /// `*` on the list: any host whose addresses are all public.
    any_public_host: bool,
}

impl Default for SourcePolicy {
    /// github.com only.
    fn default() -> Self {
        Self::parse("github.com").expect("the default list parses")
    }
}

/// Names that reach a cloud metadata server.
const METADATA_NAMES: &[&str] = &["metadata.google.internal", "metadata", "metadata.goog"];

/// Hosts whose `host/owner/repo` shorthand means the https URL (as the fetcher reads it).
const SHORTHAND_HOSTS: &[&str] = &["github.com/", "gitlab.com/", "bitbucket.org/"];

impl SourcePolicy {
    /// Reads the setting: comma-separated `host`, `host:port`, `http://host[:port]` (plain
    /// http allowed too), `git://host[:port]` (the git protocol too) or `*` (any public
    /// host).
    pub fn parse(setting: &str) -> Result<Self, String> {
        let mut policy = Self {
            hosts: Vec::new(),
            any_public_host: false,
        };
        for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                policy.any_public_host = true;
                continue;
            }
            let lower = entry.to_ascii_lowercase();
            let (scheme, rest) = match lower.split_once("://") {
                Some((scheme @ ("http" | "https" | "git"), rest)) => (scheme, rest),
                Some(_) => {
                    return Err(format!(
                        "{entry:?} in {SETTING}: only http://, https:// or git:// may be written"
                    ));
                }
                None => ("https", lower.as_str()),
            };
            let (host, port) = parse_host_port(rest.trim_end_matches('/'))
                .map_err(|r| format!("{entry:?} in {SETTING}: {}", r.reason))?;
            policy.hosts.push(AllowedHost {
                host,
                port,
                plain_http: scheme == "http",
                git_protocol: scheme == "git",
            });
        }
        if policy.hosts.is_empty() && !policy.any_public_host {
            return Err(format!(
                "{SETTING} lists no host; give e.g. github.com or github.com,gitlab.com"
            ));
        }
        Ok(policy)
    }

    /// The list as it would be written, for `--print-config` and messages.
    pub fn describe(&self) -> String {
        let mut entries: Vec<String> = self
            .hosts
            .iter()
            .map(|h| {
                let port = h.port.map(|p| format!(":{p}")).unwrap_or_default();
                let scheme = match (h.plain_http, h.git_protocol) {
                    (true, _) => "http://",
                    (_, true) => "git://",
                    _ => "",
                };
                format!("{scheme}{}{port}", h.host)
            })
            .collect();
        if self.any_public_host {
            entries.push("*".into());
        }
        entries.join(",")
    }

    /// Whether `url` goes to a listed host (over a scheme its entry allows): listed hosts are
    /// trusted, whatever they resolve to.
    pub fn is_listed(&self, url: &GitUrl) -> bool {
        self.hosts.iter().any(|h| {
            let scheme_ok = match url.scheme {
                Scheme::Http => h.plain_http,
                Scheme::Git => h.git_protocol,
                Scheme::Https | Scheme::Ssh => true,
            };
            // An entry without a port means the scheme's own (http://host means port 80).
            let port_ok = h.port.unwrap_or(url.scheme.default_port()) == url.effective_port();
            h.host == url.host && scheme_ok && port_ok
        })
    }

    /// Whether the caller must resolve `url`'s host and pass its addresses to
    /// [`check_addresses`](Self::check_addresses): a name that is not listed.
    pub fn needs_resolution(&self, url: &GitUrl) -> bool {
        matches!(url.host, Host::Name(_)) && !self.is_listed(url)
    }

    /// Reads a source text: a local path, a `file://` URL (the caller decides whether local
    /// sources are allowed), or a remote URL this policy allows.
    pub fn classify(&self, text: &str) -> Result<Location, Refusal> {
        if text.len() > MAX_SOURCE_LEN {
            return Err(refuse(
                Cause::TooLong,
                format!("the source is longer than {MAX_SOURCE_LEN} characters"),
                "give the repository's https URL",
            ));
        }
        // A folder's name may hold spaces; no source holds a newline or a tab.
        if text.chars().any(char::is_control) {
            return Err(stray_characters());
        }
        if text.starts_with('-') {
            return Err(option_injection("the source", text));
        }
        if let Some(transport) = git_transport(text) {
            return Err(refuse(
                Cause::GitTransport,
                format!("{transport}:: names a git transport that runs commands or reads files"),
                "give the repository's https URL, e.g. https://github.com/owner/repo",
            ));
        }
        let url_like = text.split_once("://").is_some_and(|(s, _)| is_scheme(s))
            || text
                .split_once(':')
                .is_some_and(|(before, _)| before.contains('@') && !before.contains('/'))
            || SHORTHAND_HOSTS
                .iter()
                .any(|h| text.strip_prefix("www.").unwrap_or(text).starts_with(h));
        if url_like && text.chars().any(char::is_whitespace) {
            return Err(stray_characters());
        }
        if let Some((scheme, rest)) = text.split_once("://")
            && is_scheme(scheme)
        {
            let scheme = scheme.to_ascii_lowercase();
            return match scheme.as_str() {
                "file" => Ok(Location::FileUrl),
                "https" => self
                    .check(parse_url(Scheme::Https, rest)?)
                    .map(Location::Remote),
                "http" => self
                    .check(parse_url(Scheme::Http, rest)?)
                    .map(Location::Remote),
                "ssh" | "git+ssh" | "ssh+git" => self
                    .check(parse_url(Scheme::Ssh, rest)?)
                    .map(Location::Remote),
                "git" => self
                    .check(parse_url(Scheme::Git, rest)?)
                    .map(Location::Remote),
                other => Err(refuse(
                    Cause::UnsupportedScheme,
                    format!("{other}:// is not a way to fetch a git repository"),
                    "give the repository's https URL, e.g. https://github.com/owner/repo",
                )),
            };
        }
        // scp-like ssh: `git@github.com:owner/repo.git` (a colon before any slash, after an `@`).
        if let Some((before, path)) = text.split_once(':')
            && before.contains('@')
            && !before.contains('/')
        {
            let (user, host) = before.rsplit_once('@').unwrap_or(("", before));
            let url = parse_scp(user, host, path)?;
            return self.check(url).map(Location::Remote);
        }
        let bare = text.strip_prefix("www.").unwrap_or(text);
        if SHORTHAND_HOSTS.iter().any(|h| bare.starts_with(h)) {
            return self
                .check(parse_url(Scheme::Https, bare)?)
                .map(Location::Remote);
        }
        Ok(Location::LocalPath)
    }

    /// [`classify`](Self::classify) for a text that must be a remote URL (a webhook's
    /// `clone_url`): a local path or `file://` is refused.
    pub fn check_remote(&self, text: &str) -> Result<GitUrl, Refusal> {
        match self.classify(text)? {
            Location::Remote(url) => Ok(url),
            Location::LocalPath | Location::FileUrl => Err(refuse(
                Cause::UnsupportedScheme,
                format!("{text:?} is not a remote git URL"),
                "give the repository's https URL, e.g. https://github.com/owner/repo",
            )),
        }
    }

    /// A parsed URL against the list.
    fn check(&self, url: GitUrl) -> Result<GitUrl, Refusal> {
        if self.is_listed(&url) {
            return Ok(url);
        }
        let host = url.host.to_string();
        let add_it = format!("the server's owner may add it to {SETTING}");
        if let Host::Ip(ip) = url.host
            && let Some(class) = address_class(ip)
        {
            return Err(refuse(
                Cause::Forbidden(class),
                format!("{host} is {}", class.describe()),
                format!("deploy from a public git host; {add_it}"),
            ));
        }
        if let Host::Name(name) = &url.host
            && METADATA_NAMES.contains(&name.as_str())
        {
            return Err(refuse(
                Cause::MetadataHost,
                format!("{name} is the cloud metadata server"),
                "deploy from a public git host",
            ));
        }
        let listed_host = self.hosts.iter().any(|h| h.host == url.host);
        match url.scheme {
            Scheme::Http if listed_host || self.any_public_host => Err(refuse(
                Cause::PlainHttp,
                format!("plain http to {host} is not allowed"),
                format!("use https; or list the host as http://{host} in {SETTING}"),
            )),
            Scheme::Git => Err(refuse(
                Cause::GitProtocol,
                format!("git:// to {host} is not allowed: it is unencrypted and unauthenticated"),
                format!(
                    "use the repository's https URL; or list the host as git://{host} in {SETTING}"
                ),
            )),
            Scheme::Ssh => Err(refuse(
                Cause::Ssh,
                format!("ssh to {host} is not allowed: ssh goes only to listed hosts"),
                format!("use the repository's https URL; {add_it}"),
            )),
            _ if self.any_public_host && url.scheme == Scheme::Https => Ok(url),
            _ => Err(refuse(
                Cause::NotListed,
                format!(
                    "{host}{} is not an allowed source host (allowed: {})",
                    url.port.map(|p| format!(":{p}")).unwrap_or_default(),
                    self.describe()
                ),
                format!("deploy a repository from an allowed host; {add_it}"),
            )),
        }
    }

    /// The addresses `url`'s host resolved to, checked: a listed host is trusted; otherwise
    /// every address must be public (one private address is enough to refuse, since the
    /// client may pick any).
    pub fn check_addresses(&self, url: &GitUrl, addresses: &[IpAddr]) -> Result<(), Refusal> {
        if self.is_listed(url) {
            return Ok(());
        }
        let host = url.host.to_string();
        if addresses.is_empty() {
            return Err(refuse(
                Cause::Unresolved,
                format!("{host} resolves to no address"),
                "check the URL",
            ));
        }
        for ip in addresses {
            if let Some(class) = address_class(*ip) {
                return Err(refuse(
                    Cause::Forbidden(class),
                    format!("{host} resolves to {ip}, {}", class.describe()),
                    format!(
                        "deploy from a public git host; the server's owner may list {host} in \
                         {SETTING}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Checks a branch name: what git accepts as a branch, and never an option.
pub fn check_branch(branch: &str) -> Result<(), Refusal> {
    if branch.starts_with('-') {
        return Err(option_injection("the branch", branch));
    }
    let bad = branch.len() > 255
        || branch.is_empty()
        || branch
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
        || branch.contains("..")
        || branch.contains("@{")
        || branch.contains("//")
        || branch.starts_with('/')
        || branch.ends_with('/')
        || branch.ends_with('.')
        || branch.ends_with(".lock");
    if bad {
        return Err(refuse(
            Cause::BadBranch,
            format!("{branch:?} is not a valid branch name"),
            "give the branch as git shows it, e.g. main or release/1.2",
        ));
    }
    Ok(())
}

/// Checks a folder inside the repository: relative, inside it, never an option.
pub fn check_subdir(subdir: &str) -> Result<(), Refusal> {
    if subdir.starts_with('-') {
        return Err(option_injection("the folder", subdir));
    }
    let bad = subdir.len() > 1024
        || subdir.starts_with('/')
        || subdir.contains('\\')
        || subdir.chars().any(char::is_control)
        || subdir.split('/').any(|p| p == "..");
    if bad {
        return Err(refuse(
            Cause::BadFolder,
            format!("the folder {subdir:?} points outside the repository"),
            "give a relative folder such as apps/web",
        ));
    }
    Ok(())
}

fn stray_characters() -> Refusal {
    refuse(
        Cause::StrayCharacters,
        "the source contains whitespace or control characters",
        "give the URL alone, e.g. https://github.com/owner/repo",
    )
}

fn option_injection(what: &str, text: &str) -> Refusal {
    refuse(
        Cause::OptionInjection,
        format!("{what} {text:?} starts with '-', which git would read as an option"),
        "remove the leading '-'",
    )
}

/// `ext` in `ext::sh -c ...`: a transport prefix before any slash.
fn git_transport(text: &str) -> Option<&str> {
    let (name, _) = text.split_once("::")?;
    (is_scheme(name) && !name.contains('/')).then_some(name)
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
}

/// `rest` is what follows `scheme://`.
fn parse_url(scheme: Scheme, rest: &str) -> Result<GitUrl, Refusal> {
    if rest.contains(['\\', '?', '#']) {
        return Err(refuse(
            Cause::BadHost,
            "the URL contains a backslash, a query or a fragment",
            "give the repository's URL alone, e.g. https://github.com/owner/repo",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            if scheme != Scheme::Ssh || !is_ssh_user(userinfo) {
                return Err(credentials());
            }
            (Some(userinfo.to_string()), host_port)
        }
        None => (None, authority),
    };
    let (host, port) = parse_host_port(host_port)?;
    Ok(GitUrl {
        scheme,
        host,
        port,
        user,
        path: path.to_string(),
        scp_like: false,
    })
}

fn parse_scp(user: &str, host: &str, path: &str) -> Result<GitUrl, Refusal> {
    if !is_ssh_user(user) {
        return Err(credentials());
    }
    if path.starts_with('-') || path.contains(['\\', '?', '#']) {
        return Err(option_injection("the repository path", path));
    }
    let (host, port) = parse_host_port(host)?;
    if port.is_some() {
        return Err(bad_host(host.to_string()));
    }
    Ok(GitUrl {
        scheme: Scheme::Ssh,
        host,
        port: None,
        user: Some(user.to_string()),
        path: format!("/{path}"),
        scp_like: true,
    })
}

/// An ssh user name only (`git`); a `user:password` pair is a credential.
fn is_ssh_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn credentials() -> Refusal {
    refuse(
        Cause::Credentials,
        "the URL carries a user name or credentials",
        "remove them from the URL; a private GitHub repository is read with the server's \
         GITHUB_TOKEN or your linked account",
    )
}

fn bad_host(host: impl fmt::Display) -> Refusal {
    refuse(
        Cause::BadHost,
        format!("\"{host}\" is not a valid host name"),
        "give the repository's URL as its host shows it, e.g. https://github.com/owner/repo",
    )
}

fn parse_host_port(text: &str) -> Result<(Host, Option<u16>), Refusal> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(|| bad_host(text))?;
        let ip: Ipv6Addr = inside.parse().map_err(|_| bad_host(text))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad_host(text))?),
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (name, port) = match text.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (text, None),
        };
        (parse_name(name)?, port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|n| *n != 0 && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| bad_host(text))?,
        ),
    };
    Ok((host, port))
}

/// A host name, or an IPv4 address in dotted-quad form; other numeric forms (`2130706433`,
/// `0x7f.1`, `0177.0.0.1`) are refused, since resolvers read them differently.
fn parse_name(name: &str) -> Result<Host, Refusal> {
    let lower = name.to_ascii_lowercase();
    let valid_chars = lower
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    let labels: Vec<&str> = lower.split('.').collect();
    let valid_labels = labels
        .iter()
        .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
    if lower.is_empty() || lower.len() > 253 || !valid_chars || !valid_labels {
        return Err(bad_host(name));
    }
    let last = labels.last().copied().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x");
    if numeric {
        let canonical = lower
            .parse::<Ipv4Addr>()
            .ok()
            .filter(|ip| ip.to_string() == lower);
        return match canonical {
            Some(ip) => Ok(Host::Ip(IpAddr::V4(ip))),
            None => Err(refuse(
                Cause::ObscureAddress,
                format!("{name} is an IP address in an unusual (decimal, octal or hex) form"),
                "write the host as a name, or as a dotted address such as 192.0.2.10",
            )),
        };
    }
    Ok(Host::Name(lower))
}

#[cfg(test)]
mod tests;
