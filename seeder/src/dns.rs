//! DNS answers: the zone's A/AAAA (a random subset of good nodes spread over network
//! groups), `x<hex>.<zone>` service filters, SOA and NS; NXDOMAIN inside the zone,
//! REFUSED outside it. The wire format is hickory-proto's; this module only decides
//! what to say.
//!
//! Malformed input never panics: a query hickory cannot parse gets FORMERR when its
//! 12-byte header can be read (so the client learns), nothing otherwise; responses are
//! never answered (no loops between two servers).

use std::net::IpAddr;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use rand::Rng;

use crate::error::Error;
use crate::goodset::GoodSet;

/// Time to live of every record.
pub const TTL: u32 = 60;

/// The largest UDP answer we send, with EDNS (the DNS flag day's 1232).
pub const MAX_EDNS_PAYLOAD: u16 = 1232;

/// Most address records in one answer.
pub const MAX_ANSWERS: usize = 32;

/// The transport a query came over (decides the size limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 bytes, or the client's EDNS size up to [`MAX_EDNS_PAYLOAD`].
    Udp,
    /// TCP: up to 65,535 bytes.
    Tcp,
}

/// The zone we are authoritative for.
#[derive(Debug, Clone)]
pub struct Zone {
    zone: Name,
    ns: Name,
    soa: Record,
    ns_record: Record,
}

impl Zone {
    /// The zone `zone` served by name server `ns` (both DNS names).
    ///
    /// ```
    /// let z = seeder::dns::Zone::new("seed.example.org", "ns.example.org").unwrap();
    /// assert_eq!(z.name().to_string(), "seed.example.org.");
    /// ```
    pub fn new(zone: &str, ns: &str) -> Result<Zone, Error> {
        let parse = |s: &str| -> Result<Name, Error> {
            let mut n = Name::from_ascii(s).map_err(|e| Error::InvalidName {
                name: s.into(),
                reason: e.to_string(),
            })?;
            n.set_fqdn(true);
            if n.is_root() {
                return Err(Error::InvalidName {
                    name: s.into(),
                    reason: "the root is not a seeder zone".into(),
                });
            }
            Ok(n.to_lowercase())
        };
        let zone = parse(zone)?;
        let ns = parse(ns)?;
        let mbox = Name::from_ascii("hostmaster")
            .and_then(|h| h.append_domain(&zone))
            .map_err(|e| Error::InvalidName {
                name: zone.to_string(),
                reason: e.to_string(),
            })?;
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() as u32);
        let soa = Record::from_rdata(
            zone.clone(),
            TTL,
            RData::SOA(SOA::new(
                ns.clone(),
                mbox,
                serial,
                604_800,
                86_400,
                2_592_000,
                TTL,
            )),
        );
        let ns_record = Record::from_rdata(zone.clone(), TTL, RData::NS(NS(ns.clone())));
        Ok(Zone {
            zone,
            ns,
            soa,
            ns_record,
        })
    }

    /// The zone's name.
    pub fn name(&self) -> &Name {
        &self.zone
    }

    /// The name server's name.
    pub fn ns(&self) -> &Name {
        &self.ns
    }

    /// What `name` means in this zone.
    fn classify(&self, name: &Name) -> Target {
        let name = name.to_lowercase();
        if name == self.zone {
            return Target::Apex(0);
        }
        if !self.zone.zone_of(&name) {
            return Target::Outside;
        }
        if name.num_labels() == self.zone.num_labels() + 1 {
            if let Some(label) = name.iter().next() {
                if let Some(mask) = parse_filter(label) {
                    return Target::Apex(mask);
                }
            }
        }
        Target::NoSuchName
    }
}

/// `x<hex>` → the service bits it asks for (1 to 16 hex digits).
///
/// ```
/// use seeder::dns::parse_filter;
/// assert_eq!(parse_filter(b"x9"), Some(9));
/// assert_eq!(parse_filter(b"X409"), Some(0x409));
/// assert_eq!(parse_filter(b"x"), None);
/// assert_eq!(parse_filter(b"xg"), None);
/// ```
pub fn parse_filter(label: &[u8]) -> Option<u64> {
    let (first, hex) = label.split_first()?;
    if !first.eq_ignore_ascii_case(&b'x') || hex.is_empty() || hex.len() > 16 {
        return None;
    }
    let s = std::str::from_utf8(hex).ok()?;
    u64::from_str_radix(s, 16).ok()
}

/// The cache key of a query whose answer is a random set of addresses (A or AAAA at
/// the apex or a filter name, over UDP), or `None` for every other query. The key holds
/// the name's exact bytes (case included: resolvers check the echo), the type, the
/// recursion-desired bit and the EDNS size.
pub fn address_query_key(zone: &Zone, msg: &Message, key: &mut Vec<u8>) -> bool {
    key.clear();
    if msg.message_type() != MessageType::Query
        || msg.op_code() != OpCode::Query
        || msg.queries().len() != 1
    {
        return false;
    }
    let q = &msg.queries()[0];
    if q.query_class() != DNSClass::IN
        || !matches!(q.query_type(), RecordType::A | RecordType::AAAA)
        || !matches!(zone.classify(q.name()), Target::Apex(_))
    {
        return false;
    }
    let edns = match msg.extensions() {
        Some(e) if e.version() > 0 => return false,
        Some(e) => e.max_payload().clamp(512, MAX_EDNS_PAYLOAD),
        None => 0,
    };
    key.extend_from_slice(&edns.to_be_bytes());
    key.push(u8::from(msg.recursion_desired()));
    key.extend_from_slice(&u16::from(q.query_type()).to_be_bytes());
    for label in q.name().iter() {
        key.push(label.len() as u8);
        key.extend_from_slice(label);
    }
    true
}

enum Target {
    /// The zone itself, or a filter name (the mask; 0 = no filter).
    Apex(u64),
    NoSuchName,
    Outside,
}

/// Builds the response to one query datagram or TCP message. `None`: say nothing.
///
/// ```
/// use hickory_proto::op::{Message, Query};
/// use hickory_proto::rr::{Name, RecordType};
/// use seeder::dns::{respond, Transport, Zone};
/// use seeder::goodset::GoodSet;
///
/// let zone = Zone::new("seed.test", "ns.test").unwrap();
/// let good = GoodSet::build([("127.1.0.1:18444".parse().unwrap(), 9u64)]);
/// let mut q = Message::new();
/// q.add_query(Query::query(Name::from_ascii("seed.test.").unwrap(), RecordType::A));
/// let answer = respond(&zone, &good, &q.to_vec().unwrap(), Transport::Udp, &mut rand::thread_rng()).unwrap();
/// let answer = Message::from_vec(&answer).unwrap();
/// assert_eq!(answer.answers().len(), 1);
/// ```
pub fn respond<R: Rng + ?Sized>(
    zone: &Zone,
    good: &GoodSet,
    query: &[u8],
    transport: Transport,
    rng: &mut R,
) -> Option<Vec<u8>> {
    let msg = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) => return formerr_for(query),
    };
    respond_to(zone, good, &msg, transport, rng)
}

/// [`respond`] for a query hickory-proto has already parsed.
pub fn respond_to<R: Rng + ?Sized>(
    zone: &Zone,
    good: &GoodSet,
    msg: &Message,
    transport: Transport,
    rng: &mut R,
) -> Option<Vec<u8>> {
    if msg.message_type() != MessageType::Query {
        return None;
    }
    let mut resp = Message::new();
    resp.set_id(msg.id())
        .set_message_type(MessageType::Response)
        .set_op_code(msg.op_code())
        .set_recursion_desired(msg.recursion_desired())
        .set_authoritative(true);
    let limit = match transport {
        Transport::Tcp => u16::MAX as usize,
        Transport::Udp => match msg.extensions() {
            Some(e) => usize::from(e.max_payload().clamp(512, MAX_EDNS_PAYLOAD)),
            None => 512,
        },
    };
    if let Some(e) = msg.extensions() {
        if e.version() > 0 {
            resp.set_response_code(ResponseCode::BADVERS);
            resp.set_edns(our_edns());
            return resp.to_vec().ok();
        }
        resp.set_edns(our_edns());
    }
    if msg.op_code() != OpCode::Query {
        resp.set_response_code(ResponseCode::NotImp);
        return resp.to_vec().ok();
    }
    if msg.queries().len() != 1 {
        resp.set_response_code(ResponseCode::FormErr);
        return resp.to_vec().ok();
    }
    let q = &msg.queries()[0];
    resp.add_query(q.clone());
    if !matches!(q.query_class(), DNSClass::IN | DNSClass::ANY) {
        resp.set_response_code(ResponseCode::Refused);
        return resp.to_vec().ok();
    }
    let mask = match zone.classify(q.name()) {
        Target::Outside => {
            resp.set_authoritative(false);
            resp.set_response_code(ResponseCode::Refused);
            return resp.to_vec().ok();
        }
        Target::NoSuchName => {
            resp.set_response_code(ResponseCode::NXDomain);
            resp.add_name_server(zone.soa.clone());
            return resp.to_vec().ok();
        }
        Target::Apex(mask) => mask,
    };
    let name = q.name().clone();
    let apex = mask == 0 && name.to_lowercase() == zone.zone;
    let qtype = q.query_type();
    // The room left for address records (header, question, OPT; then per record).
    let fixed = 12 + name.len() + 4 + if resp.extensions().is_some() { 11 } else { 0 };
    let room = limit.saturating_sub(fixed);
    let mut ips = Vec::with_capacity(MAX_ANSWERS);
    match qtype {
        RecordType::A => {
            good.select(false, mask, (room / 16).min(MAX_ANSWERS), rng, &mut ips);
        }
        RecordType::AAAA => {
            good.select(true, mask, (room / 28).min(MAX_ANSWERS), rng, &mut ips);
        }
        RecordType::ANY => {
            let n = (room / 28).min(MAX_ANSWERS);
            good.select(false, mask, n / 2 + n % 2, rng, &mut ips);
            good.select(true, mask, n / 2, rng, &mut ips);
        }
        RecordType::NS if apex => {
            resp.add_answer(zone.ns_record.clone());
        }
        RecordType::SOA if apex => {
            resp.add_answer(zone.soa.clone());
        }
        _ => {}
    }
    for ip in ips {
        let rdata = match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        resp.add_answer(Record::from_rdata(name.clone(), TTL, rdata));
    }
    if resp.answers().is_empty() {
        resp.add_name_server(zone.soa.clone()); // NODATA: the SOA for negative caching
    }
    encode_within(&mut resp, limit)
}

/// Encodes `resp` in at most `limit` bytes: records are dropped from the end (answers,
/// then authority) and TC is set until it fits; `None` if even the bare header does not.
pub fn encode_within(resp: &mut Message, limit: usize) -> Option<Vec<u8>> {
    let mut bytes = resp.to_vec().ok()?;
    while bytes.len() > limit {
        if resp.answers_mut().pop().is_none() && resp.name_servers_mut().pop().is_none() {
            return None;
        }
        resp.set_truncated(true);
        bytes = resp.to_vec().ok()?;
    }
    Some(bytes)
}

fn our_edns() -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(MAX_EDNS_PAYLOAD);
    e
}

/// FORMERR for a query whose header reads (and is a query); nothing otherwise.
pub fn formerr_for(query: &[u8]) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(query)).ok()?;
    if header.message_type() != MessageType::Query {
        return None;
    }
    Message::error_msg(header.id(), header.op_code(), ResponseCode::FormErr)
        .to_vec()
        .ok()
}

/// A query for `name`/`qtype` (clients, tests, benches).
///
/// ```
/// let bytes = seeder::dns::query_bytes(7, "seed.test.", hickory_proto::rr::RecordType::AAAA);
/// assert_eq!(&bytes[..2], &[0, 7]);
/// ```
pub fn query_bytes(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id).set_recursion_desired(true);
    if let Ok(n) = Name::from_ascii(name) {
        m.add_query(Query::query(n, qtype));
    }
    m.to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::net::SocketAddr;

    fn zone() -> Zone {
        Zone::new("seed.test", "ns.test").unwrap()
    }

    fn good() -> GoodSet {
        let mut v: Vec<(SocketAddr, u64)> = Vec::new();
        for g in 0..50u8 {
            v.push((SocketAddr::from(([127, g, 0, 1], 18444)), 9));
            v.push((SocketAddr::from(([127, g, 0, 2], 18444)), 1));
            v.push((format!("[2001:{g:x}::1]:18444").parse().unwrap(), 0x409));
        }
        GoodSet::build(v)
    }

    fn ask(name: &str, t: RecordType) -> Message {
        let bytes = respond(
            &zone(),
            &good(),
            &query_bytes(1, name, t),
            Transport::Udp,
            &mut SmallRng::seed_from_u64(3),
        )
        .unwrap();
        assert!(bytes.len() <= 512);
        Message::from_vec(&bytes).unwrap()
    }

    #[test]
    fn apex_a_and_aaaa_fit_in_512() {
        let m = ask("seed.test.", RecordType::A);
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.answers().len() >= 20, "{}", m.answers().len());
        assert!(m.answers().iter().all(|r| r.ttl() == TTL));
        assert!(!m.truncated());
        let m = ask("SEED.test.", RecordType::AAAA);
        assert!(m.answers().len() >= 10);
    }

    #[test]
    fn filters_select_services() {
        let m = ask("x8.seed.test.", RecordType::A);
        assert!(!m.answers().is_empty());
        for r in m.answers() {
            let RData::A(a) = r.data().unwrap() else {
                panic!()
            };
            assert_eq!(a.0.octets()[3], 1, "only the 9-service nodes have bit 8");
        }
        let m = ask("x400.seed.test.", RecordType::A);
        assert!(m.answers().is_empty());
        assert_eq!(m.name_servers().len(), 1, "SOA for negative caching");
        assert!(!ask("x409.seed.test.", RecordType::AAAA)
            .answers()
            .is_empty());
    }

    #[test]
    fn soa_ns_nxdomain_refused() {
        assert_eq!(ask("seed.test.", RecordType::SOA).answers().len(), 1);
        assert_eq!(ask("seed.test.", RecordType::NS).answers().len(), 1);
        assert_eq!(
            ask("www.seed.test.", RecordType::A).response_code(),
            ResponseCode::NXDomain
        );
        assert_eq!(
            ask("xq.seed.test.", RecordType::A).response_code(),
            ResponseCode::NXDomain
        );
        assert_eq!(
            ask("example.com.", RecordType::A).response_code(),
            ResponseCode::Refused
        );
    }

    #[test]
    fn malformed_input_gets_formerr_or_nothing() {
        let z = zone();
        let g = good();
        let mut rng = SmallRng::seed_from_u64(1);
        // Truncated: header only, one question announced.
        let mut q = query_bytes(0x1234, "seed.test.", RecordType::A);
        q.truncate(14);
        let r = Message::from_vec(&respond(&z, &g, &q, Transport::Udp, &mut rng).unwrap()).unwrap();
        assert_eq!((r.id(), r.response_code()), (0x1234, ResponseCode::FormErr));
        // Shorter than a header: nothing.
        assert!(respond(&z, &g, &[1, 2, 3], Transport::Udp, &mut rng).is_none());
        // A compression pointer to itself.
        let mut lp = vec![0x12, 0x35, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        lp.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let r = respond(&z, &g, &lp, Transport::Udp, &mut rng).unwrap();
        assert_eq!(
            Message::from_vec(&r).unwrap().response_code(),
            ResponseCode::FormErr
        );
        // 100 questions.
        let mut m = Message::new();
        for _ in 0..100 {
            m.add_query(Query::query(
                Name::from_ascii("seed.test.").unwrap(),
                RecordType::A,
            ));
        }
        let r = respond(&z, &g, &m.to_vec().unwrap(), Transport::Udp, &mut rng).unwrap();
        assert_eq!(
            Message::from_vec(&r).unwrap().response_code(),
            ResponseCode::FormErr
        );
        // A response is never answered.
        let mut resp = Message::new();
        resp.set_message_type(MessageType::Response);
        assert!(respond(&z, &g, &resp.to_vec().unwrap(), Transport::Udp, &mut rng).is_none());
    }

    #[test]
    fn edns_raises_the_limit() {
        let mut m = Message::new();
        m.add_query(Query::query(
            Name::from_ascii("seed.test.").unwrap(),
            RecordType::AAAA,
        ));
        let mut e = Edns::new();
        e.set_max_payload(4096);
        m.set_edns(e);
        let r = respond(
            &zone(),
            &good(),
            &m.to_vec().unwrap(),
            Transport::Udp,
            &mut SmallRng::seed_from_u64(2),
        )
        .unwrap();
        assert!(r.len() <= MAX_EDNS_PAYLOAD as usize && r.len() > 512);
        assert_eq!(Message::from_vec(&r).unwrap().answers().len(), MAX_ANSWERS);
    }

    #[test]
    fn oversized_answers_are_cut_and_flagged() {
        let m = ask("seed.test.", RecordType::A);
        let full = m.to_vec().unwrap();
        let mut cut = m.clone();
        let bytes = encode_within(&mut cut, full.len() - 1).unwrap();
        assert!(bytes.len() < full.len());
        let back = Message::from_vec(&bytes).unwrap();
        assert!(back.truncated());
        assert_eq!(back.answers().len(), m.answers().len() - 1);
        let mut tiny = m.clone();
        assert!(encode_within(&mut tiny, 11).is_none());
        let mut fits = m.clone();
        let same = Message::from_vec(&encode_within(&mut fits, full.len()).unwrap()).unwrap();
        assert!(!same.truncated());
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), seed: u64) {
            let mut rng = SmallRng::seed_from_u64(seed);
            if let Some(r) = respond(&zone(), &good(), &bytes, Transport::Udp, &mut rng) {
                prop_assert!(r.len() <= MAX_EDNS_PAYLOAD as usize);
            }
        }

        #[test]
        fn mutated_queries_never_panic(flip in proptest::collection::vec((0usize..40, any::<u8>()), 1..6), seed: u64) {
            let mut q = query_bytes(9, "x9.seed.test.", RecordType::A);
            for (i, b) in flip { let n = q.len(); q[i % n] = b; }
            let _ = respond(&zone(), &good(), &q, Transport::Udp, &mut SmallRng::seed_from_u64(seed));
        }
    }
}
