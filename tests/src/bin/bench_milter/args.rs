//! Command line of bench-milter.

pub const USAGE: &str = "\
Usage: bench-milter [--messages N] [--size BYTES] [--sessions N] [--rounds N]
                    [--warmup N] [--big-mib N] [--concurrent N] [--city-dir DIR]

  --messages N   messages per run, each stream and variant (default 2000)
  --size BYTES   payload per message (default 20480)
  --sessions N   parallel SMTP sessions (default 20)
  --rounds N     rounds; each runs every variant once per stream, in an order that rotates
                 from round to round; medians are reported (default 3)
  --warmup N     messages sent to each variant and stream before measuring (default 200)
  --big-mib N    size of the single big message for the memory figure (default 50)
  --concurrent N SMTP connections held open in DATA at once for the memory figure
                 (default 200)
  --city-dir DIR keep the city's files (demail.toml, evidence store, milter log) in DIR, e.g.
                 on tmpfs to see what fsync costs (default: a temporary directory in $TMPDIR)

Quick look (about a minute): --messages 300 --rounds 1 --warmup 50
Needs root (Postfix), smtp-source (package postfix) and opendkim (package opendkim). Build
release binaries first: bench/milter-throughput does all of it.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub messages: usize,
    pub size: u64,
    pub sessions: usize,
    pub rounds: usize,
    pub warmup: usize,
    pub big_mib: u64,
    pub concurrent: usize,
    pub city_dir: Option<std::path::PathBuf>,
}

impl Args {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut a = Args {
            messages: 2000,
            size: 20 * 1024,
            sessions: 20,
            rounds: 3,
            warmup: 200,
            big_mib: 50,
            concurrent: 200,
            city_dir: None,
        };
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut value = |name: &str| -> Result<u64, String> {
                let v = it.next().ok_or_else(|| format!("{name} needs a number"))?;
                v.parse()
                    .map_err(|_| format!("{name}: {v:?} is not a whole number"))
            };
            match flag.as_str() {
                "--messages" => a.messages = count(value("--messages")?)?,
                "--size" => a.size = value("--size")?,
                "--sessions" => a.sessions = count(value("--sessions")?)?,
                "--rounds" => a.rounds = count(value("--rounds")?)?,
                "--warmup" => {
                    a.warmup = usize::try_from(value("--warmup")?).map_err(|e| e.to_string())?
                }
                "--big-mib" => a.big_mib = value("--big-mib")?,
                "--concurrent" => a.concurrent = count(value("--concurrent")?)?,
                "--city-dir" => {
                    let dir = it.next().ok_or("--city-dir needs a directory")?;
                    a.city_dir = Some(dir.into());
                }
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(a)
    }
}

/// A count that must be at least 1.
fn count(v: u64) -> Result<usize, String> {
    match usize::try_from(v) {
        Ok(0) => Err("counts must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Args, String> {
        Args::parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_overrides() {
        let d = parse(&[]).expect("defaults");
        assert_eq!(
            (d.messages, d.size, d.sessions, d.rounds),
            (2000, 20480, 20, 3)
        );
        let a = parse(&["--messages", "10", "--rounds", "1", "--warmup", "0"]).expect("ok");
        assert_eq!((a.messages, a.rounds, a.warmup), (10, 1, 0));
        assert!(parse(&["--rounds", "0"]).is_err());
        assert!(parse(&["--size"]).is_err());
        assert!(parse(&["--size", "20k"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert_eq!(d.concurrent, 200);
        assert_eq!(parse(&["--concurrent", "5"]).expect("ok").concurrent, 5);
        assert!(parse(&["--concurrent", "0"]).is_err());
        let c = parse(&["--city-dir", "/dev/shm/x"]).expect("ok");
        assert_eq!(c.city_dir, Some("/dev/shm/x".into()));
    }
}
