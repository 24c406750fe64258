//! Names of the virtual folders on the wire: under Dovecot's personal namespace prefix, with its
//! hierarchy delimiter, in modified UTF-7 or (after `ENABLE UTF8=ACCEPT`) UTF-8; and the
//! matching of what clients send against them (normalised first, so a look-alike spelling of a
//! virtual name cannot reach a real folder that hides behind it).

use demail_policy::FolderNames;
use unicode_normalization::UnicodeNormalization;

use crate::mailbox::Role;
use crate::mutf7;

/// Dovecot's personal namespace, learned from its NAMESPACE answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub prefix: String,
    pub delimiter: Option<char>,
}

/// What a name is, seen from the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A virtual folder.
    Folder(Role),
    /// The `root` (a `\Noselect` parent).
    Root,
    /// Any other name below the root: not ours, but no real folder may be made there, where it
    /// would pass for evidence.
    UnderRoot,
}

/// The virtual names of one session.
#[derive(Clone, Debug)]
pub struct Layout {
    root: String,
    delimiter: Option<char>,
    folders: Vec<(Role, String)>,
}

impl Layout {
    pub fn new(names: &FolderNames, ns: &Namespace) -> Layout {
        let delim = ns.delimiter.map(String::from).unwrap_or_default();
        let root = format!("{}{}", ns.prefix, names.root);
        let full = |n: &str| nfc(&format!("{root}{delim}{n}"));
        Layout {
            folders: vec![
                (Role::Dispatch, full(&names.dispatch)),
                (Role::Receipt, full(&names.receipt)),
                (Role::Retrieve, full(&names.retrieve)),
                (Role::Failed, full(&names.failed)),
                (Role::Pending, full(&names.pending)),
                (Role::DeemedServed, full(&names.deemed_served)),
            ],
            root: nfc(&root),
            delimiter: ns.delimiter,
        }
    }

    /// Every virtual name (UTF-8), root first.
    pub fn names(&self) -> impl Iterator<Item = (Target, &str)> {
        std::iter::once((Target::Root, self.root.as_str())).chain(
            self.folders
                .iter()
                .map(|(r, n)| (Target::Folder(*r), n.as_str())),
        )
    }

    #[cfg(test)]
    pub fn name_of(&self, role: Role) -> &str {
        self.folders
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, n)| n.as_str())
            .unwrap_or_default()
    }

    /// What a mailbox argument from the client names, if it is one of ours.
    pub fn lookup(&self, wire: &[u8], utf8: bool) -> Option<Target> {
        let name = decode(wire, utf8)?;
        let mut name = nfc(&name);
        // Dovecot drops a trailing separator (`CREATE "De-Mail/Ausstehend/"`).
        if let Some(d) = self.delimiter {
            while name.len() > 1 && name.ends_with(d) {
                name.pop();
            }
        }
        let folded = fold(&name);
        if let Some((t, _)) = self.names().find(|(_, n)| fold(n) == folded) {
            return Some(t);
        }
        let root = fold(&self.root);
        match self.delimiter {
            Some(d) if folded.starts_with(&format!("{root}{}", fold(&d.to_string()))) => {
                Some(Target::UnderRoot)
            }
            _ => None,
        }
    }

    /// One of the virtual folders or their root.
    pub fn is_virtual(&self, wire: &[u8], utf8: bool) -> bool {
        matches!(
            self.lookup(wire, utf8),
            Some(Target::Folder(_) | Target::Root)
        )
    }
}

/// The name as the client spells it on the wire.
pub fn encode(name: &str, utf8: bool) -> Vec<u8> {
    if utf8 {
        name.as_bytes().to_vec()
    } else {
        mutf7::encode(name).into_bytes()
    }
}

/// A mailbox argument as text: UTF-8 after UTF8=ACCEPT, modified UTF-7 otherwise (a client may
/// still send 8-bit names; Dovecot takes them as UTF-8, and so does this).
pub fn decode(wire: &[u8], utf8: bool) -> Option<String> {
    if !utf8 && let Some(s) = mutf7::decode(wire) {
        return Some(s);
    }
    String::from_utf8(wire.to_vec()).ok()
}

fn nfc(s: &str) -> String {
    s.nfc().collect()
}

/// Compared without case and with compatibility forms folded: a client that creates
/// `de-mail/VERSANDBESTÄTIGUNGEN` or a full-width variant gets the refusal the virtual name
/// gets, rather than a real folder that would look like evidence.
fn fold(s: &str) -> String {
    s.nfkc().flat_map(char::to_lowercase).collect()
}

/// RFC 3501 LIST pattern matching: `*` matches anything, `%` anything but the delimiter.
pub fn matches(pattern: &str, name: &str, delimiter: Option<char>) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches_from(&p, &n, delimiter)
}

fn matches_from(p: &[char], n: &[char], delim: Option<char>) -> bool {
    // Iterative with memo-free backtracking is fine: patterns and names are short, and the
    // recursion depth is bounded by the pattern length.
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| matches_from(&p[1..], &n[i..], delim)),
        Some('%') => {
            let stop = n.iter().position(|c| Some(*c) == delim).unwrap_or(n.len());
            (0..=stop).any(|i| matches_from(&p[1..], &n[i..], delim))
        }
        Some(c) => n.first() == Some(c) && matches_from(&p[1..], &n[1..], delim),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> FolderNames {
        FolderNames {
            root: "De-Mail".into(),
            dispatch: "Versandbestätigungen".into(),
            receipt: "Eingangsbestätigungen".into(),
            retrieve: "Abholbestätigungen".into(),
            failed: "Fehlermeldungen".into(),
            pending: "Ausstehend".into(),
            deemed_served: "Zustellfiktion".into(),
        }
    }

    fn ns(prefix: &str, d: char) -> Namespace {
        Namespace {
            prefix: prefix.into(),
            delimiter: Some(d),
        }
    }

    #[test]
    fn names_follow_the_namespace() {
        let l = Layout::new(&names(), &ns("", '/'));
        assert_eq!(l.name_of(Role::Dispatch), "De-Mail/Versandbestätigungen");
        let l = Layout::new(&names(), &ns("INBOX.", '.'));
        assert_eq!(l.name_of(Role::Pending), "INBOX.De-Mail.Ausstehend");
        assert_eq!(
            encode(l.name_of(Role::Retrieve), false),
            b"INBOX.De-Mail.Abholbest&AOQ-tigungen"
        );
    }

    #[test]
    fn lookups_normalise() {
        let l = Layout::new(&names(), &ns("", '/'));
        let t = Some(Target::Folder(Role::Dispatch));
        assert_eq!(l.lookup(b"De-Mail/Versandbest&AOQ-tigungen", false), t);
        assert_eq!(l.lookup("De-Mail/Versandbestätigungen".as_bytes(), true), t);
        // Decomposed umlaut, other case, full-width hyphen-minus: all the same folder.
        assert_eq!(
            l.lookup("De-Mail/Versandbesta\u{308}tigungen".as_bytes(), true),
            t
        );
        assert_eq!(l.lookup(b"de-mail/VERSANDBEST&AMQ-TIGUNGEN", false), t);
        assert_eq!(
            l.lookup("De\u{ff0d}Mail/Versandbestätigungen".as_bytes(), true),
            t
        );
        assert_eq!(l.lookup(b"De-Mail", false), Some(Target::Root));
        assert_eq!(l.lookup(b"INBOX", false), None);
        assert_eq!(
            l.lookup(b"De-Mail/Versandbestaetigungen", false),
            Some(Target::UnderRoot)
        );
    }

    #[test]
    fn names_below_the_root_are_not_ours_but_reserved() {
        let l = Layout::new(&names(), &ns("", '/'));
        assert_eq!(
            l.lookup(b"De-Mail/Ausstehend/", false),
            Some(Target::Folder(Role::Pending)),
            "Dovecot drops a trailing separator"
        );
        assert_eq!(l.lookup(b"De-Mail/", false), Some(Target::Root));
        assert_eq!(l.lookup(b"De-Mail/Privat", false), Some(Target::UnderRoot));
        assert_eq!(l.lookup(b"de-mail/x/y", false), Some(Target::UnderRoot));
        assert!(!l.is_virtual(b"De-Mail/Privat", false));
        assert!(l.is_virtual(b"De-Mail", false));
        assert_eq!(l.lookup(b"De-Mailbox", false), None);
        assert_eq!(l.lookup(b"/", false), None);
    }

    #[test]
    fn wildcards() {
        assert!(matches("*", "De-Mail/Ausstehend", Some('/')));
        assert!(!matches("%", "De-Mail/Ausstehend", Some('/')));
        assert!(matches("%", "De-Mail", Some('/')));
        assert!(matches("De-Mail/%", "De-Mail/Ausstehend", Some('/')));
        assert!(matches("De*d", "De-Mail/Ausstehend", Some('/')));
        assert!(!matches("Ausstehend", "De-Mail/Ausstehend", Some('/')));
    }
}
