//! demail-imap-proxy: passes IMAP between clients and Dovecot unchanged and adds the De-Mail
//! evidence as read-only virtual folders, seen only by the logins entitled to them.

pub mod mailbox;
pub mod render;
