//! Ports and process groups as Linux shows them in `/proc`: a free port for the app, the
//! members of a process group, and the TCP ports a group listens on (to catch an app that
//! ignores `$PORT`).
//!
//! Off Linux there is no `/proc`; the functions then report nothing rather than fail, and
//! liveness falls back to signal 0.

use nix::sys::signal::killpg;
use nix::unistd::Pid;
use std::collections::{HashSet, VecDeque};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::Path;
use std::sync::Mutex;

/// A port nobody listens on right now, and not one this process handed out recently (two
/// deploys starting at once must not both get it). The app binds it a moment later; the tiny
/// race with another program taking it in between is accepted (the start then fails with
/// EADDRINUSE and says so).
pub(crate) fn free_port() -> std::io::Result<u16> {
    static RECENT: Mutex<VecDeque<u16>> = Mutex::new(VecDeque::new());
    const REMEMBERED: usize = 64;
    let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..16 {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        let port = listener.local_addr()?.port();
        if !recent.contains(&port) {
            if recent.len() == REMEMBERED {
                recent.pop_front();
            }
            recent.push_back(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::other("no free port found"))
}

/// A listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listener {
    pub addr: IpAddr,
    pub port: u16,
}

impl Listener {
    /// Whether only this machine can reach it (127.0.0.1 or ::1).
    pub(crate) fn is_loopback_only(&self) -> bool {
        self.addr.is_loopback()
    }
}

/// The live (not zombie) processes of group `pgid`.
pub(crate) fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            stat_fields(*pid).is_some_and(|(state, pgrp, _)| pgrp == pgid && state != 'Z')
        })
        .collect()
}

/// Whether any process of group `pgid` still runs.
pub(crate) fn group_alive(pgid: i32) -> bool {
    if Path::new("/proc/self/stat").exists() {
        !group_members(pgid).is_empty()
    } else {
        killpg(Pid::from_raw(pgid), None).is_ok()
    }
}

/// When process `pid` started, in clock ticks since boot: with the pid, it names one process
/// for good, so a recycled pid is not mistaken for our app.
pub(crate) fn start_ticks(pid: i32) -> Option<u64> {
    stat_fields(pid).map(|(_, _, ticks)| ticks)
}

/// State, process group and start time from `/proc/<pid>/stat`.
fn stat_fields(pid: i32) -> Option<(char, i32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let ticks = fields.get(19)?.parse().ok()?;
    Some((state, pgrp, ticks))
}

/// The TCP sockets that the processes of group `pgid` listen on.
pub(crate) fn group_listeners(pgid: i32) -> Vec<Listener> {
    let inodes: HashSet<u64> = group_members(pgid)
        .into_iter()
        .flat_map(socket_inodes)
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut found: Vec<Listener> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .flat_map(|text| parse_listeners(&text))
        .filter(|(inode, _)| inodes.contains(inode))
        .map(|(_, listener)| listener)
        .collect();
    found.sort_by_key(|l| (l.port, l.addr));
    found.dedup();
    found
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| {
        let target = fs::read_link(fd.ok()?.path()).ok()?;
        let target = target.to_str()?;
        target
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// The listening sockets of a `/proc/net/tcp` or `tcp6` table, with their inodes.
fn parse_listeners(table: &str) -> Vec<(u64, Listener)> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3)? != &LISTEN {
                return None;
            }
            let (addr, port) = fields.get(1)?.split_once(':')?;
            let listener = Listener {
                addr: parse_addr(addr)?,
                port: u16::from_str_radix(port, 16).ok()?,
            };
            Some((fields.get(9)?.parse().ok()?, listener))
        })
        .collect()
}

/// An address as the kernel prints it: 32-bit words in hex, each in host (little-endian)
/// byte order.
fn parse_addr(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_le_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            // A dual-stack socket bound to an IPv4 address shows as ::ffff:a.b.c.d.
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1145 1 0 100 0 0 10 0\n   1: 020200C0:98B0 507100CB:01BB 01 00000000:00000000 00:00000000 00000000     0        0 6690 1 0 21 4 1 62 146\n";
        assert_eq!(
            parse_listeners(tcp),
            vec![(
                1145,
                Listener {
                    addr: "127.0.0.1".parse().unwrap(),
                    port: 3000
                }
            )]
        );
        let tcp6 = "header\n   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0 100 0 0 10 0\n   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 778 1 0 100 0 0 10 0\n";
        let parsed = parse_listeners(tcp6);
        assert_eq!(parsed[0].1.addr, "::".parse::<IpAddr>().unwrap());
        assert_eq!(parsed[0].1.port, 8080);
        assert_eq!(parsed[1].1.addr, "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn finds_our_own_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pgid = nix::unistd::getpgrp().as_raw();
        let found = group_listeners(pgid);
        assert!(found.iter().any(|l| l.port == port), "{found:?}");
        assert!(group_alive(pgid));
        assert!(start_ticks(std::process::id() as i32).is_some());
    }
}
