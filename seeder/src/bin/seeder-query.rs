//! `seeder-query`: a small DNS client (hickory-proto's wire format over std sockets)
//! for the demo and for checking a seeder where `dig` is not installed.
//!
//! ```text
//! seeder-query SERVER:PORT NAME [A|AAAA|NS|SOA|ANY] [--tcp]
//! ```
//! Prints the response code and one line per answer record.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tcp = args.iter().any(|a| a == "--tcp");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let (Some(server), Some(name)) = (pos.first(), pos.get(1)) else {
        eprintln!("usage: seeder-query SERVER:PORT NAME [A|AAAA|NS|SOA|ANY] [--tcp]");
        return ExitCode::from(2);
    };
    let Ok(server) = server.parse::<SocketAddr>() else {
        eprintln!("bad server address {server:?}");
        return ExitCode::from(2);
    };
    let qtype = pos
        .get(2)
        .and_then(|t| RecordType::from_str(&t.to_ascii_uppercase()).ok())
        .unwrap_or(RecordType::A);
    let query = seeder::dns::query_bytes(rand::random(), name, qtype);
    let answer = if tcp {
        tcp_ask(server, &query)
    } else {
        udp_ask(server, &query)
    };
    let bytes = match answer {
        Ok(b) => b,
        Err(e) => {
            eprintln!("no answer from {server}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match Message::from_vec(&bytes) {
        Ok(m) => {
            use std::fmt::Write as _;
            let mut text = format!(
                "{} answers={} truncated={}\n",
                m.response_code(),
                m.answers().len(),
                m.truncated()
            );
            for r in m.answers() {
                let _ = writeln!(text, "{r}");
            }
            // A reader that stopped early (`| head`) is not an error.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("undecodable answer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn udp_ask(server: SocketAddr, q: &[u8]) -> std::io::Result<Vec<u8>> {
    let s = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.send_to(q, server)?;
    let mut buf = vec![0u8; 65535];
    let n = s.recv(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn tcp_ask(server: SocketAddr, q: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(&(q.len() as u16).to_be_bytes())?;
    s.write_all(q)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    Ok(buf)
}
