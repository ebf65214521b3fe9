//! Child processes: servers under test and client workers, always reaped.
//!
//! Every child is held by a [`ChildGuard`], which kills and waits for it when dropped, so
//! a run that ends early (an error, a panic unwinding, a failed phase) leaves nothing
//! behind. A child's output is kept (last lines) to explain a failure.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of a child's output kept for diagnostics.
const KEEP_LINES: usize = 40;

/// A child process that is killed and reaped when dropped.
pub struct ChildGuard {
    child: Child,
    name: String,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl ChildGuard {
    /// Wraps a started child; `name` appears in messages.
    pub fn new(child: Child, name: impl Into<String>) -> ChildGuard {
        ChildGuard {
            child,
            name: name.into(),
            tail: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at creation.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child itself (to take its pipes).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Keeps the last lines of `stream` (a pipe of the child) in memory, on a thread.
    pub fn keep_tail(&self, stream: impl Read + Send + 'static) {
        let tail = self.tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut t) = tail.lock() {
                    if t.len() == KEEP_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        });
    }

    /// The kept output lines, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// `Some(status)` if the child has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Ends this process when its parent goes away (it is re-parented), checked twice a
/// second on a thread: a child started by peer-bench must not outlive it even when
/// peer-bench is killed with no chance to clean up.
pub fn exit_with_parent() {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(3);
        }
    });
}

/// A free TCP port on `ip` (bound, read, released: another process could take it in
/// between, which on a test machine does not happen in practice).
pub fn free_port(ip: std::net::IpAddr) -> io::Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// Waits until `addr` accepts connections, or the child exits, or `timeout` passes.
pub fn wait_listening(
    addr: SocketAddr,
    child: &mut ChildGuard,
    timeout: Duration,
) -> io::Result<()> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.exited() {
            return Err(io::Error::other(format!(
                "{} exited ({status}) before listening on {addr}; its last output:\n{}",
                child.name(),
                child.tail().join("\n")
            )));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} did not listen on {addr} within {timeout:?}",
                    child.name()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the seed-server example binary is: beside this executable's directory
/// (`target/<profile>/examples/seed-server`), else under the workspace's
/// `target/release/examples`.
pub fn find_seed_server() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let mut candidates = vec![dir.join("examples").join("seed-server")];
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    candidates.push(workspace.join("target/release/examples/seed-server"));
    candidates.push(workspace.join("target/dist/examples/seed-server"));
    candidates.into_iter().find(|p| p.is_file())
}

/// A server under test, started by peer-bench.
pub struct Server {
    /// The process.
    pub guard: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `program args…` (which must end up listening on `addr`) and waits until it
    /// accepts connections.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        addr: SocketAddr,
    ) -> io::Result<Server> {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::other(format!("starting {}: {e}", program.display())))?;
        let mut guard = ChildGuard::new(child, name);
        if let Some(out) = guard.child_mut().stdout.take() {
            guard.keep_tail(out);
        }
        if let Some(err) = guard.child_mut().stderr.take() {
            guard.keep_tail(err);
        }
        wait_listening(addr, &mut guard, Duration::from_secs(30))?;
        Ok(Server { guard, addr })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_guard_kills_its_child() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let guard = ChildGuard::new(child, "sleep");
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(guard);
        // Reaped: no zombie left under our pid namespace.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_server_that_dies_early_is_reported_with_its_output() {
        let port = free_port("127.0.0.1".parse().unwrap()).unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let args = vec!["-c".to_string(), "echo boom >&2; exit 3".to_string()];
        let err = match Server::start("failing", Path::new("sh"), &args, addr) {
            Ok(_) => panic!("a server that exits cannot be listening"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("failing exited"), "{err}");
    }
}
