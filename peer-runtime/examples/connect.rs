//! Connects to one node, prints its version, and optionally downloads its header chain.
//!
//! ```text
//! cargo run --release -p peerwire-runtime --example connect -- --network regtest [--sync-headers] [--v2|--v1] 127.0.0.1:PORT
//! ```
//!
//! `--v2` speaks BIP324 v2 (reconnecting once with v1 if the node drops the v2 attempt
//! before the version exchange); `--v1` turns v2 off (NODE_P2P_V2 not advertised). The
//! line after the handshake says which transport was used, and the v2 session id (compare
//! it with the node's `getpeerinfo`).
//!
//! With `--sync-headers` it asks for headers with `getheaders` and block locators
//! (peer-helpers), checks that every header links to the previous one and (on Bitcoin
//! networks) meets its own proof-of-work target, and ends with
//! `tip height=<h> hash=<hex>`. A reply with fewer than 2,000 headers ends the sync; so
//! does silence for `--timeout` seconds (bcoin sends nothing when it has nothing more).
//!
//! LBRY's proof of work is not a hash this workspace computes (it is a scrypt-like
//! chain of SHA-512/RIPEMD-160), so on LBRY networks only the links are checked.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use peer_core::{Listener, Peer};
use peer_helpers::{block_locator_from_slice, push_get_headers, RequestFilter, RequestOutcome};
use peer_runtime::{PeerOptions, Runtime};
use wire_codec::message::{Headers, ServiceFlags, Version};
use wire_codec::{Hash256, HeaderKind, Network};

#[path = "support/ops.rs"]
mod ops;

#[derive(Parser, Debug)]
#[command(
    name = "connect",
    version,
    about = "Handshake with a node, print its version, optionally sync headers"
)]
struct Args {
    /// Network: mainnet, testnet3, testnet4, signet, regtest, lbry-mainnet, lbry-testnet, lbry-regtest.
    #[arg(long, default_value = "regtest")]
    network: Network,
    /// Download and check the whole header chain.
    #[arg(long)]
    sync_headers: bool,
    /// Speak BIP324 v2 (one v1 reconnect if the node drops the v2 attempt).
    #[arg(long, conflicts_with = "v1")]
    v2: bool,
    /// v1 only: v2 off and NODE_P2P_V2 not advertised.
    #[arg(long)]
    v1: bool,
    /// Seconds to wait for the handshake and for each headers reply.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// The node, host:port.
    addr: SocketAddr,
}

/// What the peer's listener forwards to the main thread.
enum Seen {
    Version(Box<Version>),
    Headers(Headers),
}

/// Forwards `version` and `headers` to the main thread.
struct Forward(mpsc::Sender<Seen>);

impl Listener for Forward {
    fn on_version(
        &mut self,
        _peer: &mut Peer,
        msg: &Version,
    ) -> Option<wire_codec::message::Reject> {
        let _ = self.0.send(Seen::Version(Box::new(msg.clone())));
        None
    }

    fn on_headers(&mut self, _peer: &mut Peer, msg: Headers) {
        let _ = self.0.send(Seen::Headers(msg));
    }
}

/// Genesis block hashes of the Bitcoin networks. Other networks learn theirs from the
/// first `headers` reply to a locator the node does not know (nodes then answer from
/// genesis).
fn genesis(network: Network) -> Option<Hash256> {
    let hex = match network {
        Network::Mainnet => "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        Network::Testnet3 => "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
        Network::Testnet4 => "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
        Network::Signet => "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
        Network::Regtest => "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
        _ => return None,
    };
    hex.parse().ok()
}

fn main() -> ExitCode {
    ops::init_logging();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let wait = Duration::from_secs(args.timeout.max(1));
    let rt = Runtime::builder(args.network)
        .configure(|c| {
            c.services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
            c.user_agent_name = "connect".into();
            c.user_agent_version = env!("CARGO_PKG_VERSION").into();
            c.v2_transport = !args.v1;
        })
        .executors(1)
        .start()
        .map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    let opts = PeerOptions::new()
        .listener(Box::new(Forward(tx)))
        .v2(args.v2);
    let peer = rt
        .connect_with_options(args.addr, opts)
        .wait_timeout(wait)
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let version = match peer.wait_for_handshake_timeout(wait) {
        None => return Err("handshake timed out".into()),
        Some(Err(reason)) => return Err(format!("handshake failed: {reason}")),
        Some(Ok(v)) => v,
    };
    let session = peer
        .session_id()
        .map(|id| id.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .unwrap_or_else(|| "-".into());
    println!(
        "transport={} session_id={session}",
        peer.transport().map(|t| t.to_string()).unwrap_or_default()
    );
    // Anything before our first request (there should be nothing) is not an answer.
    let mut remote = None;
    while let Ok(seen) = rx.try_recv() {
        if let Seen::Version(v) = seen {
            remote = Some(v);
        }
    }
    match remote {
        Some(v) => println!(
            "remote version={} services={:#x} user_agent={:?} start_height={} relay={} negotiated={}",
            v.version, v.services.0, v.user_agent, v.start_height, v.relay, version
        ),
        None => println!("negotiated={version}"),
    }
    if args.sync_headers {
        let (height, tip) = sync_headers(args.network, &peer, &rx, wait)?;
        println!("tip height={height} hash={tip}");
    }
    peer.disconnect();
    let _ = peer.wait_for_disconnect_timeout(wait);
    rt.shutdown();
    Ok(())
}

fn sync_headers(
    network: Network,
    peer: &peer_runtime::PeerHandle,
    rx: &mpsc::Receiver<Seen>,
    wait: Duration,
) -> Result<(u64, Hash256), String> {
    let check_pow = network.header_kind() == HeaderKind::Bitcoin;
    let mut chain: Vec<Hash256> = genesis(network).into_iter().collect();
    let mut filter = RequestFilter::new();
    let mut handle = peer.clone();
    let started = Instant::now();
    loop {
        let locator = if chain.is_empty() {
            // Unknown genesis: a locator the node cannot know makes it start at genesis.
            vec![Hash256([0xff; 32])]
        } else {
            block_locator_from_slice(&chain)
        };
        let outcome = push_get_headers(&mut handle, &mut filter, locator, Hash256::ZERO)
            .map_err(|e| e.to_string())?;
        if outcome == RequestOutcome::SkippedDuplicate {
            // The same request again: the chain did not move, so there is nothing more.
            break;
        }
        let reply = loop {
            match rx.recv_timeout(wait) {
                Ok(Seen::Headers(h)) => break Some(h),
                Ok(Seen::Version(_)) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => break None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the peer ended during the sync".into())
                }
            }
        };
        let Some(headers) = reply else {
            // bcoin answers nothing when it has nothing more to send.
            break;
        };
        let n = headers.headers.len();
        for (i, h) in headers.headers.iter().enumerate() {
            let hash = h.hash();
            match chain.last() {
                None => chain.push(h.prev_block),
                Some(prev) if *prev != h.prev_block => {
                    return Err(format!(
                        "header {hash} at height {} does not link to {prev}",
                        chain.len()
                    ))
                }
                Some(_) => {}
            }
            if check_pow && !h.meets_target(&hash) {
                return Err(format!(
                    "header {hash} (#{i} of the reply) misses its target {:#x}",
                    h.bits
                ));
            }
            chain.push(hash);
        }
        let height = chain.len().saturating_sub(1);
        eprintln!(
            "headers: height={height} (+{n}) in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        if n < 2000 {
            break;
        }
    }
    let tip = chain.last().copied().ok_or("no headers at all")?;
    Ok((chain.len().saturating_sub(1) as u64, tip))
}
