//! IMAP logins as the rules compare them.

use unicode_normalization::UnicodeNormalization;

/// The form a login is compared in: trimmed, Unicode NFC, lower case (Dovecot's default
/// `auth_username_format = %Lu` lower-cases too). Look-alike characters stay distinct.
pub fn normalise_login(login: &str) -> String {
    login.trim().nfc().flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            normalise_login(" Poststelle@Example.TEST "),
            "poststelle@example.test"
        );
        assert_eq!(normalise_login("Jo\u{308}rg"), "jörg");
        // Cyrillic а is not Latin a.
        assert_ne!(normalise_login("\u{430}lice"), "alice");
    }
}
