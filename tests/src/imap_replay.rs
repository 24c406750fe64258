//! Replays an IMAP client command script (`tests/imap-scripts/*.imap`) against a server and
//! records the transcript, so the same script can be compared against Dovecot directly and
//! through the proxy.
//!
//! Script format, one command per line without its tag:
//! - `# style: tb|ol|cl|a` (first such comment wins) picks the tags: `tb` numeric from 27
//!   (Thunderbird), `ol` `WIR00001` (new Outlook), `cl` numeric from 1 (Outlook classic), `a`
//!   `a1`; other `#` lines and blank lines are comments.
//! - `$USER`, `$PASS` are replaced by the credentials, `$MESSAGE` by a small test message;
//!   `@LOGIN` is `LOGIN "$USER" "$PASS"`.
//! - `<<text>>` sends `text` as a synchronising literal (`{N}`, waiting for the server's `+`),
//!   `<<+text>>` as a non-synchronising one (`{N+}`).
//! - `A ++ B` sends `A`, waits for the server's `+` and sends `B` (AUTHENTICATE with a
//!   continuation); `$PLAIN64` is the base64 SASL PLAIN response for the credentials.
//! - `IDLE n` sends IDLE, waits for `+`, `n` seconds, then `DONE`.
//! - A line starting with `?` runs only through the proxy (virtual folders); it is left out
//!   when the target is Dovecot itself.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::imap_client::ImapClient;

/// A test message in CRLF form; scripts APPEND it with `<<$MESSAGE>>`.
pub const TEST_MESSAGE: &str = "From: Replay <replay@example.test>\r\n\
To: Someone <someone@example.test>\r\n\
Subject: replayed append\r\n\
Date: Thu, 03 Dec 2026 10:00:00 +0100\r\n\
Message-ID: <replay-append@example.test>\r\n\
\r\n\
Appended by a replayed client script.\r\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagStyle {
    Thunderbird,
    NewOutlook,
    ClassicOutlook,
    Alpha,
}

impl TagStyle {
    fn tag(self, n: u32) -> String {
        match self {
            TagStyle::Thunderbird => (26 + n).to_string(),
            TagStyle::NewOutlook => format!("WIR{n:05}"),
            TagStyle::ClassicOutlook => n.to_string(),
            TagStyle::Alpha => format!("a{n}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Script {
    pub name: String,
    pub style: TagStyle,
    /// Command lines as written (comments dropped).
    pub lines: Vec<String>,
}

impl Script {
    pub fn load(path: &Path) -> Script {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("script {}: {e}", path.display()));
        Script::parse(
            &path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            &text,
        )
    }

    pub fn parse(name: &str, text: &str) -> Script {
        let mut style = None;
        let mut lines = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let l = raw.trim_end();
            if let Some(c) = l.trim_start().strip_prefix('#') {
                if style.is_none()
                    && let Some(s) = c.trim().strip_prefix("style:")
                {
                    style = Some(match s.trim() {
                        "tb" => TagStyle::Thunderbird,
                        "ol" => TagStyle::NewOutlook,
                        "cl" => TagStyle::ClassicOutlook,
                        "a" => TagStyle::Alpha,
                        other => panic!("script {name} line {}: unknown style {other:?}", i + 1),
                    });
                }
                continue;
            }
            if l.trim().is_empty() {
                continue;
            }
            lines.push(l.to_string());
        }
        Script {
            name: name.to_string(),
            style: style.unwrap_or(TagStyle::Alpha),
            lines,
        }
    }
}

/// One command and what came back for it.
#[derive(Clone, Debug)]
pub struct Step {
    /// The command as written in the script (variables expanded, no tag).
    pub command: String,
    pub proxy_only: bool,
    /// Every response line (literals inlined, lossy UTF-8), the tagged one last.
    pub responses: Vec<String>,
    /// `OK`, `NO`, `BAD`, or `BYE` when the server hung up or said BYE instead.
    pub status: String,
}

impl Step {
    /// Untagged `* NO`/`* BAD`/`* BYE` lines.
    pub fn untagged_problems(&self) -> Vec<&str> {
        self.responses
            .iter()
            .filter(|r| {
                let u = r.to_ascii_uppercase();
                u.starts_with("* NO") || u.starts_with("* BAD") || u.starts_with("* BYE")
            })
            .map(String::as_str)
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct Transcript {
    pub script: String,
    pub greeting: String,
    pub steps: Vec<Step>,
}

impl Transcript {
    /// `C:`/`S:` lines, long responses cut, for the test output.
    pub fn text(&self) -> String {
        let mut out = format!("=== {} ===\nS: {}", self.script, self.greeting);
        for s in &self.steps {
            let _ = writeln!(out, "C: {}", s.command);
            for r in &s.responses {
                let r = r.trim_end();
                if r.len() > 300 {
                    let cut = r.char_indices().nth(300).map_or(r.len(), |(i, _)| i);
                    let _ = writeln!(out, "S: {} ...[{} bytes]", &r[..cut], r.len());
                } else {
                    let _ = writeln!(out, "S: {r}");
                }
            }
        }
        out
    }

    pub fn step(&self, command_prefix: &str) -> Option<&Step> {
        let p = command_prefix.to_ascii_uppercase();
        self.steps
            .iter()
            .find(|s| s.command.to_ascii_uppercase().starts_with(&p))
    }
}

/// Where a script runs: Dovecot itself leaves the `?` lines out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Dovecot,
    Proxy,
}

/// Runs `script` on `client` (greeting read already) and returns the transcript. A command
/// answered by a closed connection ends the replay with status `BYE`.
pub fn replay(
    mut client: ImapClient,
    script: &Script,
    user: &str,
    pass: &str,
    target: Target,
) -> Transcript {
    let mut steps = Vec::new();
    let mut n = 0;
    for line in &script.lines {
        let (proxy_only, line) = match line.strip_prefix('?') {
            Some(l) => (true, l.trim_start()),
            None => (false, line.as_str()),
        };
        if proxy_only && target == Target::Dovecot {
            continue;
        }
        n += 1;
        let tag = script.style.tag(n);
        let command = expand(line, user, pass);
        let step = run_one(&mut client, &tag, &command, proxy_only);
        let closed = step.status == "BYE";
        steps.push(step);
        if closed {
            break;
        }
    }
    Transcript {
        script: script.name.clone(),
        greeting: client.greeting.clone(),
        steps,
    }
}

fn expand(line: &str, user: &str, pass: &str) -> String {
    let line = if line.trim() == "@LOGIN" {
        "LOGIN \"$USER\" \"$PASS\"".to_string()
    } else {
        line.to_string()
    };
    line.replace("$USER", user)
        .replace("$PASS", pass)
        .replace("$MESSAGE", TEST_MESSAGE)
        .replace("$PLAIN64", &base64(format!("\0{user}\0{pass}").as_bytes()))
}

/// Standard base64 with padding (SASL responses).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The pieces of a command line: text, then literals (`<<..>>`) with their kind.
fn pieces(command: &str) -> (Vec<String>, Vec<(Vec<u8>, bool)>) {
    let mut texts = Vec::new();
    let mut lits = Vec::new();
    let mut rest = command;
    while let Some(open) = rest.find("<<") {
        let Some(close) = rest[open..].find(">>") else {
            break;
        };
        texts.push(rest[..open].to_string());
        let inner = &rest[open + 2..open + close];
        match inner.strip_prefix('+') {
            Some(l) => lits.push((l.as_bytes().to_vec(), false)),
            None => lits.push((inner.as_bytes().to_vec(), true)),
        }
        rest = &rest[open + close + 2..];
    }
    texts.push(rest.to_string());
    (texts, lits)
}

fn run_one(c: &mut ImapClient, tag: &str, command: &str, proxy_only: bool) -> Step {
    let shown = command.replace("\r\n", "\\r\\n");
    let mut responses = Vec::new();
    let finish = |responses: Vec<String>, status: &str| Step {
        command: shown.clone(),
        proxy_only,
        responses,
        status: status.to_string(),
    };
    if let Some((first, second)) = command.split_once(" ++ ") {
        if c.try_send(format!("{tag} {first}\r\n").as_bytes()).is_err() {
            return finish(responses, "BYE");
        }
        let Some(r) = c.try_read_response() else {
            return finish(responses, "BYE");
        };
        let r = String::from_utf8_lossy(&r).into_owned();
        let cont = r.starts_with('+');
        let status = status_of(&r);
        responses.push(r);
        if !cont {
            return finish(responses, &status);
        }
        if c.try_send(format!("{second}\r\n").as_bytes()).is_err() {
            return finish(responses, "BYE");
        }
    } else if let Some(secs) = idle_secs(command) {
        if c.try_send(format!("{tag} IDLE\r\n").as_bytes()).is_err() {
            return finish(responses, "BYE");
        }
        loop {
            let Some(r) = c.try_read_response() else {
                return finish(responses, "BYE");
            };
            let r = String::from_utf8_lossy(&r).into_owned();
            let cont = r.starts_with('+');
            let tagged = r.starts_with(&format!("{tag} "));
            responses.push(r);
            if tagged {
                let status = status_of(responses.last().unwrap());
                return finish(responses, &status);
            }
            if cont {
                break;
            }
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        if c.try_send(b"DONE\r\n").is_err() {
            return finish(responses, "BYE");
        }
    } else {
        let (texts, lits) = pieces(command);
        let mut out = format!("{tag} ").into_bytes();
        for (i, text) in texts.iter().enumerate() {
            out.extend_from_slice(text.as_bytes());
            let Some((lit, sync)) = lits.get(i) else {
                break;
            };
            let marker = if *sync {
                format!("{{{}}}\r\n", lit.len())
            } else {
                format!("{{{}+}}\r\n", lit.len())
            };
            out.extend_from_slice(marker.as_bytes());
            if *sync {
                if c.try_send(&out).is_err() {
                    return finish(responses, "BYE");
                }
                out.clear();
                let Some(r) = c.try_read_response() else {
                    return finish(responses, "BYE");
                };
                let r = String::from_utf8_lossy(&r).into_owned();
                if !r.starts_with('+') {
                    // Refused before the literal: the answer is the command's.
                    let status = status_of(&r);
                    responses.push(r);
                    return finish(responses, &status);
                }
                responses.push(r);
            }
            out.extend_from_slice(lit);
        }
        out.extend_from_slice(b"\r\n");
        if c.try_send(&out).is_err() {
            return finish(responses, "BYE");
        }
    }
    loop {
        let Some(r) = c.try_read_response() else {
            return finish(responses, "BYE");
        };
        let r = String::from_utf8_lossy(&r).into_owned();
        let tagged = r.starts_with(&format!("{tag} "));
        responses.push(r);
        if tagged {
            let status = status_of(responses.last().unwrap());
            return finish(responses, &status);
        }
    }
}

fn idle_secs(command: &str) -> Option<f64> {
    let mut w = command.split_whitespace();
    let first = w.next()?;
    if !first.eq_ignore_ascii_case("IDLE") {
        return None;
    }
    Some(w.next().and_then(|s| s.parse().ok()).unwrap_or(1.0))
}

fn status_of(tagged: &str) -> String {
    tagged
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// A response line with what legitimately differs between two runs replaced: the tag, the
/// timings Dovecot appends, dates, UIDVALIDITY and session ids.
pub fn normalise(line: &str, tag_of_command: Option<&str>) -> String {
    let mut l = line.trim_end().to_string();
    if let Some(t) = tag_of_command
        && let Some(rest) = l.strip_prefix(&format!("{t} "))
    {
        l = format!("<tag> {rest}");
    }
    l = replace_between(
        &l,
        "(",
        " secs)",
        |inner| {
            inner
                .chars()
                .all(|c| c.is_ascii_digit() || " .+".contains(c))
        },
        "(<t> secs)",
    );
    l = replace_after_word(&l, "INTERNALDATE ", '"', '"', "\"<date>\"");
    l = replace_number_after(&l, "UIDVALIDITY ");
    // The first number of APPENDUID and COPYUID is the UIDVALIDITY too (the creation time of a
    // mailbox: two mailboxes made in different seconds differ).
    l = replace_number_after(&l, "APPENDUID ");
    l = replace_number_after(&l, "COPYUID ");
    l = replace_number_after(&l, "\"x-session-id\" ");
    l
}

fn replace_between(
    s: &str,
    open: &str,
    close: &str,
    ok: impl Fn(&str) -> bool,
    with: &str,
) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(o) = rest.find(open) {
        let after = &rest[o + open.len()..];
        match after.find(close) {
            Some(c) if ok(&after[..c]) => {
                out.push_str(&rest[..o]);
                out.push_str(with);
                rest = &after[c + close.len()..];
            }
            _ => {
                out.push_str(&rest[..o + open.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn replace_after_word(s: &str, word: &str, open: char, close: char, with: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let after = &rest[i + word.len()..];
        out.push_str(&rest[..i + word.len()]);
        if let Some(body) = after.strip_prefix(open)
            && let Some(end) = body.find(close)
        {
            out.push_str(with);
            rest = &body[end + close.len_utf8()..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn replace_number_after(s: &str, word: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let after = &rest[i + word.len()..];
        out.push_str(&rest[..i + word.len()]);
        let digits = after
            .trim_start_matches('"')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if digits > 0 {
            out.push_str("<n>");
            let quote = after.starts_with('"');
            let skip = digits + if quote { 1 } else { 0 };
            rest = &after[skip..];
            rest = rest.strip_prefix('"').unwrap_or(rest);
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Commands the proxy answered worse than Dovecot: `NO`/`BAD`/`BYE` through the proxy where
/// Dovecot said `OK`, or untagged `NO`/`BAD`/`BYE` Dovecot did not send. Steps are paired in
/// order, `?` lines skipped.
pub fn worse_through_proxy(direct: &Transcript, proxied: &Transcript) -> Vec<String> {
    let proxied_steps: Vec<&Step> = proxied.steps.iter().filter(|s| !s.proxy_only).collect();
    let mut out = Vec::new();
    if proxied_steps.len() != direct.steps.len() {
        out.push(format!(
            "{}: {} commands answered directly, {} through the proxy",
            direct.script,
            direct.steps.len(),
            proxied_steps.len()
        ));
    }
    for (d, p) in direct.steps.iter().zip(proxied_steps) {
        if d.command != p.command {
            out.push(format!(
                "{}: steps out of step: {:?} vs {:?}",
                direct.script, d.command, p.command
            ));
            continue;
        }
        if p.status != d.status && p.status != "OK" {
            out.push(format!(
                "{}: `{}`: Dovecot {} ({:?}), proxy {} ({:?})",
                direct.script,
                d.command,
                d.status,
                d.responses.last().map(|s| s.trim_end()),
                p.status,
                p.responses.last().map(|s| s.trim_end()),
            ));
        }
        let known: Vec<String> = d
            .untagged_problems()
            .iter()
            .map(|x| normalise(x, None))
            .collect();
        let extra: Vec<&str> = p
            .untagged_problems()
            .into_iter()
            .filter(|u| !known.contains(&normalise(u, None)))
            .collect();
        if !extra.is_empty() {
            out.push(format!(
                "{}: `{}`: untagged problems only through the proxy: {extra:?}",
                direct.script, d.command
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_parse_with_style_and_proxy_only_lines() {
        let s = Script::parse(
            "x",
            "# style: ol\n# comment\nCAPABILITY\n\n?SELECT \"De-Mail/Ausstehend\"\n",
        );
        assert_eq!(s.style, TagStyle::NewOutlook);
        assert_eq!(
            s.lines,
            vec!["CAPABILITY", "?SELECT \"De-Mail/Ausstehend\""]
        );
        assert_eq!(TagStyle::NewOutlook.tag(1), "WIR00001");
        assert_eq!(TagStyle::Thunderbird.tag(1), "27");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"\0bob\0pw"), "AGJvYgBwdw==");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn literals_are_split_out() {
        let (t, l) = pieces("LOGIN <<+bob>> <<pw>>");
        assert_eq!(t, vec!["LOGIN ", " ", ""]);
        assert_eq!(l, vec![(b"bob".to_vec(), false), (b"pw".to_vec(), true)]);
        let (t, l) = pieces("NOOP");
        assert_eq!(t, vec!["NOOP"]);
        assert!(l.is_empty());
    }

    #[test]
    fn normalising_removes_tags_timings_dates_and_uidvalidity() {
        assert_eq!(
            normalise(
                "a7 OK Select completed (0.001 + 0.000 + 0.001 secs).\r\n",
                Some("a7")
            ),
            "<tag> OK Select completed (<t> secs)."
        );
        assert_eq!(
            normalise(
                "* 1 FETCH (UID 1 INTERNALDATE \"03-Dec-2026 10:00:00 +0100\" FLAGS ())",
                None
            ),
            "* 1 FETCH (UID 1 INTERNALDATE \"<date>\" FLAGS ())"
        );
        assert_eq!(
            normalise("* OK [UIDVALIDITY 1764755000] UIDs valid", None),
            "* OK [UIDVALIDITY <n>] UIDs valid"
        );
        // Text in parentheses that is not a timing stays.
        assert_eq!(normalise("* FLAGS (\\Seen)", None), "* FLAGS (\\Seen)");
    }
}
