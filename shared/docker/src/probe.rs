//! The startup probe's parts: a TCP connect, `GET /` over plain HTTP/1.1, a free host port,
//! and the ports a container listens on (its network namespace's `/proc/<pid>/net/tcp*`, read
//! from the host), to tell an app that ignores `$PORT` from one that is slow.

use std::collections::{BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A port on 127.0.0.1 nobody listens on now, and not one handed out recently (two deploys
/// starting at once must not both get it).
pub fn free_port() -> std::io::Result<u16> {
    static RECENT: Mutex<VecDeque<u16>> = Mutex::new(VecDeque::new());
    let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..16 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        if !recent.contains(&port) {
            if recent.len() == 64 {
                recent.pop_front();
            }
            recent.push_back(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::other("no free port found"))
}

pub async fn connects(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// `GET /` on `addr`: the status code, or why there was none.
pub async fn http_get(addr: SocketAddr, limit: Duration) -> Result<u16, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("a new connection failed ({e})"))?;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: devgem-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("the request could not be sent ({e})"))?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading the answer failed ({e})"))?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        parse_status(&head).ok_or_else(|| {
            if head.is_empty() {
                "closed the connection without answering GET /".to_string()
            } else {
                "did not answer GET / with HTTP".to_string()
            }
        })
    };
    tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or_else(|_| Err("did not answer GET / in time".to_string()))
}

/// The status code of an HTTP/1.x status line.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = String::from_utf8_lossy(head);
    let mut parts = line.lines().next()?.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// The TCP ports listened on in the network namespace of process `pid` (a container's main
/// process, seen from the host). Empty when that cannot be read (another host's engine).
pub fn listening_ports(pid: i64) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            ports.extend(parse_listeners(&text));
        }
    }
    ports
}

/// The local ports of the LISTEN (state 0A) sockets of a `/proc/net/tcp` table.
fn parse_listeners(table: &str) -> Vec<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            (state == "0A")
                .then(|| u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_listening_ports_from_a_tcp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1\n\
   1: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1\n\
   2: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 3 1\n";
        assert_eq!(parse_listeners(table), vec![8080, 3000]);
    }

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
    }
}
