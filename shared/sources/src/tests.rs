//! The policy's tests: a table of hostile sources, each refused for its own reason.

use super::*;

/// Sources an attacker might send, and why each is refused under the default list.
const HOSTILE: &[(&str, Cause)] = &[
    // Git transports and schemes that are not a clone over https.
    ("ext::sh -c touch% /tmp/pwned", Cause::GitTransport),
    ("ext::sh%20-c%20id", Cause::GitTransport),
    ("fd::17", Cause::GitTransport),
    ("EXT::ssh", Cause::GitTransport),
    ("transport::https://github.com/a/b", Cause::GitTransport),
    ("git://github.com/a/b.git", Cause::GitProtocol),
    ("GIT://evil.com/x", Cause::GitProtocol),
    ("ftp://github.com/a/b", Cause::UnsupportedScheme),
    (
        "gopher://127.0.0.1:6379/_FLUSHALL",
        Cause::UnsupportedScheme,
    ),
    (
        "javascript://github.com/%0aalert(1)",
        Cause::UnsupportedScheme,
    ),
    // Option injection.
    ("-uploadpack=touch /tmp/x", Cause::OptionInjection),
    ("--upload-pack=id", Cause::OptionInjection),
    ("-oProxyCommand=id", Cause::OptionInjection),
    ("ssh://-oProxyCommand=id/x", Cause::BadHost),
    ("git@-oProxyCommand=id:a/b", Cause::BadHost),
    ("git@github.com:-u/x", Cause::OptionInjection),
    // Credentials and userinfo tricks.
    ("https://user:ghp_secret@github.com/a/b", Cause::Credentials),
    ("https://ghp_token@github.com/a/b", Cause::Credentials),
    ("https://github.com@evil.com/x", Cause::Credentials),
    ("https://github.com:443@evil.com/x", Cause::Credentials),
    ("https://github.com%40evil.com/x", Cause::BadHost),
    ("https://evil.com\\@github.com/x", Cause::BadHost),
    ("https://evil.com#@github.com/x", Cause::BadHost),
    ("https://evil.com?@github.com/x", Cause::BadHost),
    ("ssh://user:pass@github.com/a/b", Cause::Credentials),
    // Hosts that are not listed, however they are written.
    ("https://evil.com/a/b", Cause::NotListed),
    ("HTTPS://EVIL.COM/a/b", Cause::NotListed),
    ("https://github.com.evil.com/a/b", Cause::NotListed),
    ("https://github.com./a/b", Cause::BadHost),
    ("https://github.com:8443/a/b", Cause::NotListed),
    ("https://gitlab.com/a/b", Cause::NotListed),
    ("https://%2dgithub.com/a/b", Cause::BadHost),
    ("https://git%68ub.com/a/b", Cause::BadHost),
    ("https://github.com:0/a/b", Cause::BadHost),
    ("https://github.com:+443/a/b", Cause::BadHost),
    ("https://github.com:99999/a/b", Cause::BadHost),
    ("https://[github.com]/a/b", Cause::BadHost),
    ("https:///a/b", Cause::BadHost),
    // Plain http and ssh go to listed hosts only.
    ("http://github.com/a/b", Cause::PlainHttp),
    ("ssh://git@evil.com/a/b", Cause::Ssh),
    ("git@evil.com:a/b.git", Cause::Ssh),
    ("git+ssh://git@gitlab.com/a/b", Cause::Ssh),
    // Loopback, private, link-local, multicast, unspecified, metadata: literal or disguised.
    (
        "https://127.0.0.1/a/b",
        Cause::Forbidden(AddressClass::Loopback),
    ),
    (
        "https://127.1.2.3:8080/a/b",
        Cause::Forbidden(AddressClass::Loopback),
    ),
    ("https://2130706433/a/b", Cause::ObscureAddress),
    ("https://0x7f000001/a/b", Cause::ObscureAddress),
    ("https://0177.0.0.1/a/b", Cause::ObscureAddress),
    ("https://127.1/a/b", Cause::ObscureAddress),
    ("https://0x7f.0.0.1/a/b", Cause::ObscureAddress),
    (
        "https://[::1]/a/b",
        Cause::Forbidden(AddressClass::Loopback),
    ),
    (
        "https://[::ffff:127.0.0.1]/a/b",
        Cause::Forbidden(AddressClass::Loopback),
    ),
    (
        "https://[::ffff:7f00:1]/a/b",
        Cause::Forbidden(AddressClass::Loopback),
    ),
    (
        "https://[64:ff9b::a9fe:a9fe]/a/b",
        Cause::Forbidden(AddressClass::LinkLocal),
    ),
    (
        "https://[::127.0.0.1]/a/b",
        Cause::Forbidden(AddressClass::Loopback),
    ),
    ("https://[fe80::1%25eth0]/a/b", Cause::BadHost),
    (
        "https://10.0.0.5/a/b",
        Cause::Forbidden(AddressClass::Private),
    ),
    (
        "https://172.16.3.4/a/b",
        Cause::Forbidden(AddressClass::Private),
    ),
    (
        "https://192.168.1.1/a/b",
        Cause::Forbidden(AddressClass::Private),
    ),
    (
        "https://100.64.0.1/a/b",
        Cause::Forbidden(AddressClass::Private),
    ),
    (
        "https://[fd00::1]/a/b",
        Cause::Forbidden(AddressClass::Private),
    ),
    (
        "https://169.254.169.254/computeMetadata/v1/",
        Cause::Forbidden(AddressClass::LinkLocal),
    ),
    (
        "https://[fe80::1]/a/b",
        Cause::Forbidden(AddressClass::LinkLocal),
    ),
    (
        "https://224.0.0.1/a/b",
        Cause::Forbidden(AddressClass::Multicast),
    ),
    (
        "https://[ff02::1]/a/b",
        Cause::Forbidden(AddressClass::Multicast),
    ),
    (
        "https://0.0.0.0/a/b",
        Cause::Forbidden(AddressClass::Unspecified),
    ),
    (
        "https://[::]/a/b",
        Cause::Forbidden(AddressClass::Unspecified),
    ),
    (
        "https://255.255.255.255/a/b",
        Cause::Forbidden(AddressClass::Reserved),
    ),
    (
        "https://metadata.google.internal/computeMetadata/v1/",
        Cause::MetadataHost,
    ),
    ("https://METADATA.GOOGLE.INTERNAL/x", Cause::MetadataHost),
    ("http://metadata/computeMetadata/v1/", Cause::MetadataHost),
    // Whitespace, newlines and control characters that split or hide a URL.
    (
        "https://github.com/a/b\n--upload-pack=id",
        Cause::StrayCharacters,
    ),
    (
        "https://github.com/a/b\r\nHost: evil.com",
        Cause::StrayCharacters,
    ),
    ("https://github.com /a/b", Cause::StrayCharacters),
    ("https://github.com/a/b\u{0}", Cause::StrayCharacters),
    ("\thttps://github.com/a/b", Cause::StrayCharacters),
    ("https://github.com/a/b\u{a0}", Cause::StrayCharacters),
];

#[test]
fn every_hostile_source_is_refused_for_its_reason() {
    assert!(HOSTILE.len() >= 40, "{}", HOSTILE.len());
    let policy = SourcePolicy::default();
    for (source, cause) in HOSTILE {
        match policy.classify(source) {
            Err(refusal) => {
                assert_eq!(refusal.cause, *cause, "{source:?}: {}", refusal.reason);
                assert!(!refusal.reason.is_empty() && !refusal.hint.is_empty());
            }
            Ok(location) => panic!("{source:?} was allowed as {location:?}"),
        }
    }
    let long = format!("https://github.com/{}", "a".repeat(3000));
    assert_eq!(policy.classify(&long).unwrap_err().cause, Cause::TooLong);
}

#[test]
fn the_hostile_ip_forms_are_refused_even_when_any_public_host_is_allowed() {
    let policy = SourcePolicy::parse("*").unwrap();
    for (source, cause) in HOSTILE {
        if matches!(cause, Cause::NotListed | Cause::PlainHttp) {
            continue;
        }
        assert!(policy.classify(source).is_err(), "{source:?}");
    }
    // A public host is allowed, its addresses still to be checked.
    let url = policy.check_remote("https://gitlab.com/a/b").unwrap();
    assert!(policy.needs_resolution(&url));
    assert_eq!(
        policy.classify("http://gitlab.com/a/b").unwrap_err().cause,
        Cause::PlainHttp
    );
}

#[test]
fn the_default_allows_github_over_https_and_ssh() {
    let policy = SourcePolicy::default();
    for (source, git_url) in [
        (
            "https://github.com/acme/shop",
            "https://github.com/acme/shop",
        ),
        (
            "HTTPS://GitHub.com/acme/shop.git",
            "https://github.com/acme/shop.git",
        ),
        (
            "https://github.com:443/acme/shop",
            "https://github.com:443/acme/shop",
        ),
        ("github.com/acme/shop", "https://github.com/acme/shop"),
        ("www.github.com/acme/shop", "https://github.com/acme/shop"),
        (
            "git@github.com:acme/shop.git",
            "git@github.com:acme/shop.git",
        ),
        (
            "ssh://git@github.com/acme/shop",
            "ssh://git@github.com/acme/shop",
        ),
    ] {
        match policy.classify(source) {
            Ok(Location::Remote(url)) => {
                assert_eq!(url.to_git_url(), git_url, "{source}");
                assert!(!policy.needs_resolution(&url));
            }
            other => panic!("{source}: {other:?}"),
        }
    }
    assert_eq!(policy.classify("file:///srv/repo"), Ok(Location::FileUrl));
    assert_eq!(policy.classify("FILE:///srv/repo"), Ok(Location::FileUrl));
    for path in [
        "./app",
        "/srv/app",
        "app",
        "~/code/app",
        "/srv/a:b@c",
        "/home/me/My App",
    ] {
        assert_eq!(policy.classify(path), Ok(Location::LocalPath), "{path}");
    }
}

#[test]
fn an_entry_with_a_scheme_allows_plain_http_to_that_host_only() {
    let policy = SourcePolicy::parse("github.com, http://127.0.0.1:9418,git.corp:8443").unwrap();
    assert_eq!(
        policy.describe(),
        "github.com,http://127.0.0.1:9418,git.corp:8443"
    );
    for allowed in [
        "http://127.0.0.1:9418/repo.git",
        "https://127.0.0.1:9418/repo.git",
        "https://git.corp:8443/team/app",
    ] {
        let url = policy.check_remote(allowed).unwrap();
        // Listed hosts are trusted: even a loopback address is fine.
        assert_eq!(
            policy.check_addresses(&url, &["127.0.0.1".parse().unwrap()]),
            Ok(())
        );
    }
    for refused in [
        "http://127.0.0.1:9419/repo.git",
        "http://127.0.0.1/repo.git",
        "http://git.corp:8443/team/app",
        "https://git.corp/team/app",
    ] {
        assert!(policy.check_remote(refused).is_err(), "{refused}");
    }
    assert!(SourcePolicy::parse("").is_err());
    assert!(SourcePolicy::parse("ftp://x").is_err());
    let daemon = SourcePolicy::parse("git://127.0.0.1:9418").unwrap();
    assert!(daemon.check_remote("git://127.0.0.1:9418/shop").is_ok());
    assert!(daemon.check_remote("git://127.0.0.1:9419/shop").is_err());
    assert!(SourcePolicy::parse("github.com:http").is_err());
}

#[test]
fn resolved_addresses_are_checked_for_unlisted_hosts() {
    let policy = SourcePolicy::parse("github.com,*").unwrap();
    let url = policy.check_remote("https://rebind.example/a/b").unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(policy.check_addresses(&url, &[ip("140.82.112.3")]), Ok(()));
    for bad in [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "::ffff:192.168.0.1",
        "fe80::2",
    ] {
        let refused = policy
            .check_addresses(&url, &[ip("140.82.112.3"), ip(bad)])
            .unwrap_err();
        assert!(matches!(refused.cause, Cause::Forbidden(_)), "{bad}");
        assert!(refused.reason.contains(bad), "{}", refused.reason);
    }
    assert_eq!(
        policy.check_addresses(&url, &[]).unwrap_err().cause,
        Cause::Unresolved
    );
}

#[test]
fn branches_and_folders_are_never_options() {
    for ok in ["main", "release/1.2", "feature-x", "v1.0"] {
        assert_eq!(check_branch(ok), Ok(()), "{ok}");
    }
    for bad in [
        "--upload-pack=id",
        "-b",
        "a..b",
        "a b",
        "a\nb",
        "x.lock",
        "HEAD@{1}",
        "a:b",
        "/main",
        "",
    ] {
        assert!(check_branch(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        check_branch("--output=/tmp/x").unwrap_err().cause,
        Cause::OptionInjection
    );
    assert_eq!(check_subdir("apps/web"), Ok(()));
    for bad in ["-x", "/etc", "../up", "a/../../b", "a\\b", "a\nb"] {
        assert!(check_subdir(bad).is_err(), "{bad:?}");
    }
}
