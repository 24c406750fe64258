//! Test fixture: a directory with the files a configuration must point at.

use std::path::PathBuf;

use tempfile::TempDir;

use crate::{Config, ConfigErrors};

/// A valid configuration with two public-body accounts and one private tenant. Paths are
/// relative, so they resolve into the fixture directory.
pub(crate) const BASE: &str = r#"
[gateway]
host = "gateway.provider.example"
port = 465
tls = "implicit"
client_certificate = "tls/client.pem"
client_key = "tls/client.key"
provider_ca = "tls/ca.pem"
domains = ["*.de-mail.de", "demail.provider.example"]

[inbound]
poststelle = ["Poststelle@Magdeburg.example"]

[[tenant]]
name = "Landeshauptstadt Magdeburg"
public_body = true
internal_domains = ["magdeburg.example"]

  [[tenant.account]]
  address = "Info@Magdeburg.de-mail.de"
  deliver_to = ["poststelle@magdeburg.example"]
  senders = ["*@magdeburg.example"]
  visible_to = ["poststelle@magdeburg.example", "Chefin"]
  default_options = ["dispatch", "receipt"]

  [[tenant.account]]
  address = "wohngeld@magdeburg.de-mail.de"
  deliver_to = ["wohngeld@magdeburg.example"]
  senders = ["sasl:Wohngeld-*"]
  visible_to = ["chefin"]
  default_options = ["dispatch", "receipt", "retrieve"]

[[tenant]]
name = "Hausverwaltung GmbH"
internal_domains = ["hv.example"]

  [[tenant.account]]
  address = "info@demail.provider.example"
  deliver_to = ["info@hv.example"]
  senders = ["*@hv.example", "sasl:hv-*"]
"#;

pub(crate) struct Fixture {
    pub dir: TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("tls")).expect("tls dir");
        for f in [
            "client.pem",
            "client.key",
            "ca.pem",
            "imap.pem",
            "imap.key",
            "anchor.pem",
        ] {
            std::fs::write(dir.path().join("tls").join(f), "test material\n").expect("write");
        }
        Fixture { dir }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("demail.toml")
    }

    pub fn parse(&self, text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, &self.file())
    }

    /// The base configuration, which must be valid.
    pub fn base(&self) -> Config {
        match self.parse(BASE) {
            Ok(c) => c,
            Err(e) => panic!("base config rejected:\n{e}"),
        }
    }
}
