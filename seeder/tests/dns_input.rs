//! Malformed DNS input against the running server: truncated queries, a compression
//! loop, 100 questions, garbage, an oversized TCP length — FORMERR or silence, and the
//! server keeps answering.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use support::*;

#[test]
fn malformed_queries_get_formerr_or_nothing_and_never_crash() {
    let dir = temp_dir("dns-input");
    let port = free_port();
    let mport = free_port();
    let s = seeder(
        port,
        &dir.join("db.sqlite"),
        &[],
        &["--metrics-listen", &format!("127.0.0.1:{mport}")],
    );
    let ok = eventually(20, || udp_query(port, "seed.test.", RecordType::SOA)).expect("server up");
    assert_eq!(ok.answers().len(), 1);

    // Truncated question.
    let mut q = seeder::dns::query_bytes(0x4242, "seed.test.", RecordType::A);
    q.truncate(q.len() - 3);
    let r = Message::from_vec(&udp_raw(port, &q).unwrap()).unwrap();
    assert_eq!((r.id(), r.response_code()), (0x4242, ResponseCode::FormErr));
    // A name that points at itself.
    let lp = [
        0x10, 0x01, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1,
    ];
    let r = Message::from_vec(&udp_raw(port, &lp).unwrap()).unwrap();
    assert_eq!(r.response_code(), ResponseCode::FormErr);
    // 100 questions.
    let mut m = Message::new();
    for _ in 0..100 {
        m.add_query(Query::query(
            Name::from_ascii("seed.test.").unwrap(),
            RecordType::A,
        ));
    }
    let r = Message::from_vec(&udp_raw(port, &m.to_vec().unwrap()).unwrap()).unwrap();
    assert_eq!(r.response_code(), ResponseCode::FormErr);
    // Garbage shorter than a header: silence.
    assert!(udp_raw(port, &[0xff; 5]).is_none());
    // Random garbage, 300 datagrams at once: whatever comes back parses.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..300u32 {
        let junk: Vec<u8> = (0..(i % 90)).map(|_| rand::random()).collect();
        sock.send_to(&junk, ("127.0.0.1", port)).unwrap();
    }
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        assert!(n <= 1232);
        Message::from_vec(&buf[..n]).expect("every answer parses");
    }
    // TCP: a length prefix promising more than comes, then close.
    let mut t = TcpStream::connect(("127.0.0.1", port)).unwrap();
    t.write_all(&[0xff, 0xff, 1, 2, 3]).unwrap();
    drop(t);
    // TCP: a malformed message gets FORMERR.
    let mut t = TcpStream::connect(("127.0.0.1", port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.write_all(&(lp.len() as u16).to_be_bytes()).unwrap();
    t.write_all(&lp).unwrap();
    let mut len = [0u8; 2];
    t.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    t.read_exact(&mut buf).unwrap();
    assert_eq!(
        Message::from_vec(&buf).unwrap().response_code(),
        ResponseCode::FormErr
    );

    // Still serving.
    let r = udp_query(port, "seed.test.", RecordType::NS).unwrap();
    assert_eq!(r.answers().len(), 1);

    // Prometheus metrics count what happened (UDP counts are published in batches, at
    // the latest 100 ms after the worker goes idle).
    std::thread::sleep(Duration::from_millis(300));
    let mut m = TcpStream::connect(("127.0.0.1", mport)).unwrap();
    m.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    m.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    let value = |name: &str| -> u64 {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("peerwire_seeder_{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    };
    assert!(value("dns_udp_queries_total") >= 5, "{body}");
    assert!(value("dns_tcp_queries_total") >= 1, "{body}");
    assert!(value("dns_dropped_total") >= 1, "{body}");
    assert_eq!(value("known_nodes"), 0);
    assert_eq!(s.terminate(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
