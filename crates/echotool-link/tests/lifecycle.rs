//! The link leaves the host as it found it, after a normal run and after SIGKILL, and without
//! root it either works through a user namespace or says exactly what is missing.
//!
//! This test has its own `main` (`harness = false`) because it runs copies of itself as
//! children: one that starts a link and waits to be killed, and one run as `nobody` (via
//! `setpriv`) that must call `unprivileged_setup()` while it still has a single thread, which
//! the standard test harness never has.

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use echotool_link::{Link, LinkOptions, LinkSpec, unprivileged_setup};

/// Tells a copy of this binary which child it is.
const ROLE: &str = "ECHOTOOL_LINK_TEST_CHILD";

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("hold") => return child_hold(),
        Ok("probe") => return child_probe(true),
        Ok("probe-plain") => return child_probe(false),
        _ => {}
    }
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipping lifecycle tests: they need root (CAP_NET_ADMIN)");
        println!("test result: ok. 0 passed; 0 failed; 3 ignored");
        return;
    }
    let tests: [(&str, fn()); 3] = [
        (
            "host_untouched_after_normal_run",
            host_untouched_after_normal_run,
        ),
        ("host_untouched_after_sigkill", host_untouched_after_sigkill),
        ("unprivileged_works_or_says_what_is_missing", unprivileged),
    ];
    for (name, test) in tests {
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
    }
    println!("test result: ok. 3 passed; 0 failed");
}

/// Everything a link could leave behind in the host's namespace.
fn host_state() -> String {
    let mut state = String::new();
    for args in [
        &["-o", "link"][..],
        &["-o", "addr"],
        &["route"],
        &["-6", "route"],
        &["netns", "list"],
    ] {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(out.status.success(), "ip {args:?} failed");
        state.push_str(&format!("## ip {}\n", args.join(" ")));
        state.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    state
}

fn assert_same(before: &str, after: &str, when: &str) {
    assert!(
        before == after,
        "the host's network changed {when}:\n--- before\n{before}\n--- after\n{after}"
    );
}

/// One UDP exchange across a link, made entirely inside its sides.
fn exchange(link: &Link) -> Result<(), String> {
    let in_side = |side: &echotool_link::Side| -> Result<UdpSocket, String> {
        let _guard = side.enter().map_err(|e| e.to_string())?;
        assert!(side.contains_current_thread());
        UdpSocket::bind(side.addr(false, 0)).map_err(|e| e.to_string())
    };
    let server = in_side(link.server())?;
    let client = in_side(link.client())?;
    let to = server.local_addr().map_err(|e| e.to_string())?;
    for s in [&server, &client] {
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
    }
    client.send_to(b"ping", to).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 8];
    let (n, from) = server.recv_from(&mut buf).map_err(|e| e.to_string())?;
    server.send_to(&buf[..n], from).map_err(|e| e.to_string())?;
    let (n, _) = client.recv_from(&mut buf).map_err(|e| e.to_string())?;
    (buf[..n] == *b"ping")
        .then_some(())
        .ok_or_else(|| "wrong answer".to_string())
}

fn host_untouched_after_normal_run() {
    let before = host_state();
    let link = Link::start(
        &LinkSpec::parse("delay=1ms").expect("spec"),
        LinkOptions::default(),
    )
    .expect("start the link");
    exchange(&link).expect("exchange across the link");
    assert_same(&before, &host_state(), "while a link runs");
    drop(link);
    assert_same(&before, &host_state(), "after a link stopped");
}

fn host_untouched_after_sigkill() {
    let before = host_state();
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE, "hold")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(20));
    assert_eq!(
        ready.as_deref(),
        Ok("ready"),
        "the child did not start its link"
    );
    assert_same(&before, &host_state(), "while a child's link runs");
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "the child was not killed: {status}");
    assert_same(&before, &host_state(), "after the child was SIGKILLed");
}

fn unprivileged() {
    let Ok(setpriv) = which("setpriv") else {
        println!("  setpriv not found: the unprivileged path was not tested");
        return;
    };
    let run = |role: &str| {
        let out = Command::new(&setpriv)
            .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
            .arg(std::env::current_exe().expect("own path"))
            .env(ROLE, role)
            .stdin(Stdio::null())
            .output()
            .expect("run setpriv");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("  as nobody ({role}): {}", text.trim());
        (out.status.success(), text)
    };
    // Without the user namespace: refused, naming the privilege and the way out.
    let (ok, text) = run("probe-plain");
    assert!(
        !ok,
        "a link started as nobody without a user namespace: {text}"
    );
    assert!(
        text.contains("CAP_NET_ADMIN") && text.contains("run as root"),
        "{text}"
    );
    // With it: either a working link, or one clear statement of what is missing.
    let (ok, text) = run("probe");
    if !ok {
        let named = ["/dev/net/tun", "user namespace", "CAP_NET_ADMIN"];
        assert!(named.iter().any(|n| text.contains(n)), "unclear: {text}");
    }
}

fn which(tool: &str) -> Result<String, ()> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map_err(|_| ())?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty())
        .then_some(path)
        .ok_or(())
}

/// Starts a link, says so, and waits until killed (or 60 s, or its parent closes stdin).
fn child_hold() {
    let link = Link::start(
        &LinkSpec::parse("delay=1ms").expect("spec"),
        LinkOptions::default(),
    )
    .expect("start the link");
    exchange(&link).expect("exchange across the link");
    println!("ready");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read(&mut [0u8; 1]);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(60));
}

/// Tries a link as whoever runs this and prints `ok` or the error; exit status says which.
fn child_probe(setup: bool) {
    if setup {
        // First thing: the process must still be single-threaded.
        if let Err(err) = unprivileged_setup() {
            println!("{err}");
            std::process::exit(1);
        }
    }
    let spec = LinkSpec::parse("delay=1ms").expect("spec");
    match Link::start(&spec, LinkOptions::default()).map_err(|e| e.to_string()) {
        Ok(link) => match exchange(&link) {
            Ok(()) => println!(
                "ok: a link as {}",
                if setup { "user namespace" } else { "is" }
            ),
            Err(err) => {
                println!("link started but no exchange: {err}");
                std::process::exit(1);
            }
        },
        Err(err) => {
            println!("{err}");
            std::process::exit(1);
        }
    }
}
