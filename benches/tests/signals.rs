//! SIGTERM during a run: peer-bench stops its children, reports what it finished (a note
//! says it was interrupted) and exits 0.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigterm_ends_a_run_with_exit_0_and_a_note() {
    // peer-tokio's server is peer-bench itself (`serve`), so no other binary is needed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_peer-bench"))
        .args(["--systems", "peer-tokio", "--peers", "20", "--rounds", "2"])
        .args([
            "--phases",
            "connect,hold",
            "--hold-seconds",
            "120",
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The handlers are installed first thing; give the run time to be in its hold phase.
    std::thread::sleep(Duration::from_secs(3));
    let sent = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "peer-bench still runs after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status}\n{out}\n{err}");
    assert!(
        out.contains("note: interrupted by a signal in round 1"),
        "{out}\n{err}"
    );
    assert!(err.contains("SIGTERM"), "{err}");
}
