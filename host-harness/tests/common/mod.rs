//! Shared helpers for the harness tests: paths, the CLI, test calls.
#![allow(dead_code)]

pub mod media;

use std::path::PathBuf;
use std::process::Output;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn calls() -> PathBuf {
    root().join("testdata/calls")
}

pub fn plugin_path() -> PathBuf {
    std::env::var_os("TONEMASK_PLUGIN")
        .map_or_else(|| root().join("target/tonemask-plugin.wasm"), PathBuf::from)
}

/// Runs the `tonemask` binary with the built plugin.
pub fn tonemask(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tonemask"))
        .arg("--plugin")
        .arg(plugin_path())
        .args(args)
        .output()
        .expect("running tonemask")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Digits of a signed events file, after `tonemask verify --show-digits` found it whole.
pub fn verified_digits(events: &std::path::Path, key: &std::path::Path) -> String {
    verified_digits_by_call(events, key).into_values().collect()
}

/// Digits of a signed events file per call id, after `tonemask verify --show-digits` found
/// it whole: clear digits as printed; sealed ones (`--digits sealed`) opened by `tonemask
/// open` with the processor key `proc.key` beside the key file (see [`processor_key`]); a
/// hidden one as `?`.
pub fn verified_digits_by_call(
    events: &std::path::Path,
    key: &std::path::Path,
) -> std::collections::BTreeMap<String, String> {
    let o = tonemask(&[
        "verify",
        events.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--show-digits",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("0 rejected, 0 gap(s)"), "{out}");
    let opened = if out.contains("press, digit sealed") {
        opened_digits(events, key)
    } else {
        Default::default()
    };
    let mut by_call = std::collections::BTreeMap::<String, String>::new();
    // "line N: OK   call ID seq S digit D", or "… seq S press, digit hidden|sealed"
    for line in out.lines() {
        let Some(rest) = line.split(" call ").nth(1) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(call), Some("seq"), Some(seq)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let d = match (words.next(), words.next(), words.next()) {
            (Some("digit"), Some(d), None) => d.to_string(),
            (Some("press,"), Some("digit"), Some("hidden")) => "?".to_string(),
            (Some("press,"), Some("digit"), Some("sealed")) => opened
                .get(&(call.to_string(), seq.to_string()))
                .cloned()
                .unwrap_or_else(|| panic!("sealed digit {call} {seq} did not open")),
            _ => continue,
        };
        by_call.entry(call.to_string()).or_default().push_str(&d);
    }
    by_call
}

/// `tonemask open` of an events file with `proc.key` beside `key`: (call, seq) → digit.
fn opened_digits(
    events: &std::path::Path,
    key: &std::path::Path,
) -> std::collections::BTreeMap<(String, String), String> {
    let private = key.with_file_name("proc.key");
    let o = tonemask(&[
        "open",
        events.to_str().unwrap(),
        "--processor-private",
        private.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // "call ID seq S digit D"
    stdout(&o)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["call", call, "seq", seq, "digit", d] => {
                    Some(((call.to_string(), seq.to_string()), d.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

/// A processor key pair in `dir` (`proc.key`, `proc.key.pub`), made once; the public key's
/// path, for `--digits sealed --digit-key`.
pub fn processor_key(dir: &std::path::Path) -> PathBuf {
    let private = dir.join("proc.key");
    if !private.exists() {
        let o = tonemask(&[
            "keygen",
            "--processor",
            "--kid",
            "proc",
            "--out",
            private.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    dir.join("proc.key.pub")
}

/// Writes a secret file owner-only (key files that others can read are refused).
pub fn write_private(p: &std::path::Path, content: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(p, content).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Writes a key file with a fixed test key (test-only; real keys come from `tonemask keygen`).
pub fn key_file(dir: &std::path::Path, kid: &str, byte: u8) -> PathBuf {
    let p = dir.join(format!("{kid}.key"));
    write_private(&p, format!("{kid} {}\n", hex::encode([byte; 32])));
    p
}

/// `tonemask mask INPUT OUTPUT --key KEY [EXTRA...]`, which must succeed.
pub fn mask_ok(
    input: &std::path::Path,
    output: &std::path::Path,
    key: &std::path::Path,
    extra: &[&str],
) {
    mask_status(input, output, key, extra, 0);
}

/// `tonemask mask INPUT OUTPUT --key KEY [EXTRA...]`, which must exit with `code` (0; 3 digits
/// towards the caller; 4 audio dropped; 5 both).
pub fn mask_status(
    input: &std::path::Path,
    output: &std::path::Path,
    key: &std::path::Path,
    extra: &[&str],
    code: i32,
) {
    let mut args = vec![
        "mask",
        input.to_str().unwrap(),
        output.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = tonemask(&args);
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
}
