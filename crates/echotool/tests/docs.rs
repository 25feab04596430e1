//! The commands the READMEs show run as written: a sequence in a README that fails is the
//! first thing a newcomer meets.

mod common;

use std::path::Path;

use common::*;

/// The shell lines of the first ```sh block after `heading` in `file` (comments dropped).
fn sh_block(file: &str, after: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let from = text
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} in {file}"));
    let block = text[from..].split("```sh\n").nth(1).unwrap();
    let block = &block[..block.find("```").unwrap()];
    block
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_certs_readme_sequence_runs_as_written() {
    let lines = sh_block("certs/README.md", "# certs/");
    let dir = TempDir::new("docs");
    let exe = env!("CARGO_BIN_EXE_echotool");
    let mut server = None;
    for line in &lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["echotool", "serve", args @ ..] => {
                let mut cmd = echotool();
                cmd.current_dir(&dir).arg("serve").args(args);
                let mut proc = Running::spawn(cmd);
                proc.wait_for_line("listening on");
                server = Some(proc);
            }
            ["echotool", "connect", ..] => {
                let out = sh(
                    &format!("cd '{}' && '{exe}' {}", dir.display(), &line[9..]),
                    b"hello\n",
                );
                assert!(out.status.success(), "{line}: {}", out.stderr);
                assert_eq!(out.stdout, b"hello\n", "{line}");
            }
            _ => {
                let command = line.replacen("echotool", &format!("'{exe}'"), 1);
                let out = sh(&format!("cd '{}' && {command}", dir.display()), b"");
                assert!(out.status.success(), "{line}: {}", out.stderr);
            }
        }
    }
    assert!(server.is_some(), "the sequence starts a server: {lines:?}");
}
