//! CPU time and memory of a process, from /proc (Linux), for the benchmarks' figures.

use std::time::Duration;

/// What /proc/PID/stat says about a process's CPU use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTimes {
    pub ppid: i32,
    /// utime + stime of the process itself.
    pub own: Duration,
    /// cutime + cstime: its children that have exited and been waited for.
    pub reaped_children: Duration,
}

impl CpuTimes {
    /// The process `pid`, or None when it is gone or /proc cannot be read.
    pub fn of(pid: u32) -> Option<CpuTimes> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&stat, clock_ticks()?)
    }
}

/// CPU time (user + system) `pid` has used so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    CpuTimes::of(pid).map(|t| t.own)
}

/// CPU time of `root` and of all its descendants, living or reaped: its own, its reaped
/// children's, and the same of every living process below it. A child that exits between two
/// readings moves from "living" to the parent's reaped share, so differences stay exact as
/// long as every parent waits for its children (as Postfix's master does).
pub fn tree_cpu_time(root: u32) -> Option<Duration> {
    let ticks = clock_ticks()?;
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat"));
        if let Some(t) = stat.ok().and_then(|s| parse_stat(&s, ticks)) {
            all.push((pid, t));
        }
    }
    let mut total = Duration::ZERO;
    let mut found_root = false;
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, t) in &all {
            if *pid == parent {
                found_root |= *pid == root;
                total += t.own + t.reaped_children;
            }
            if i64::from(t.ppid) == i64::from(parent) {
                frontier.push(*pid);
            }
        }
    }
    found_root.then_some(total)
}

/// A `Name:  1234 kB` line of /proc/PID/status (`VmHWM:` peak RSS, `VmRSS:`), in KiB.
pub fn status_kib(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, name)
}

fn clock_ticks() -> Option<u64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0)
}

fn parse_status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let mut words = line[name.len()..].split_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

/// Fields 4 (ppid) and 14 to 17 (utime, stime, cutime, cstime) of /proc/PID/stat, counted
/// after the parenthesised name, which may itself contain spaces and parentheses.
fn parse_stat(stat: &str, ticks_per_second: u64) -> Option<CpuTimes> {
    if ticks_per_second == 0 {
        return None;
    }
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let duration = |ticks: u64| {
        Duration::from_secs(ticks / ticks_per_second)
            + Duration::from_secs_f64((ticks % ticks_per_second) as f64 / ticks_per_second as f64)
    };
    Some(CpuTimes {
        ppid: fields.get(1)?.parse().ok()?,
        own: duration(num(11)? + num(12)?),
        reaped_children: duration(num(13)? + num(14)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_name() {
        // pid (comm with ) space) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime cutime cstime ...
        let stat = "42 (a) b) S 7 42 42 0 -1 4194560 100 0 0 0 250 50 30 20 20 0";
        let t = parse_stat(stat, 100).expect("parsed");
        assert_eq!(t.ppid, 7);
        assert_eq!(t.own, Duration::from_secs(3));
        assert_eq!(t.reaped_children, Duration::from_millis(500));
        assert_eq!(parse_stat(stat, 0), None);
        assert_eq!(parse_stat("garbage", 100), None);
        assert_eq!(parse_stat("1 (x) S 1 2 3", 100), None, "too short");
    }

    #[test]
    fn status_lines_are_read_in_kib() {
        let status = "Name:\tx\nVmHWM:\t   51234 kB\nVmRSS:\t  100 kB\nThreads: 3\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(51234));
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(100));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
        assert_eq!(parse_status_kib(status, "Threads:"), None, "no unit");
    }

    #[test]
    fn our_own_figures_are_readable() {
        // Both are positive; their order is not asserted, since the kernel updates the RSS
        // counters in batches and the high-water mark can lag behind the current value.
        let me = std::process::id();
        let hwm = status_kib(me, "VmHWM:").expect("VmHWM of this process");
        let rss = status_kib(me, "VmRSS:").expect("VmRSS of this process");
        assert!(hwm > 0 && rss > 0, "hwm {hwm} rss {rss}");
        assert!(cpu_time(me).is_some());
    }

    #[test]
    fn a_tree_includes_its_living_children() {
        let me = std::process::id();
        // A child that burns some CPU and then waits to be read.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 5",
            ])
            .spawn()
            .expect("sh");
        let child_pid = child.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let child_cpu = loop {
            let c = cpu_time(child_pid).unwrap_or_default();
            if c > Duration::ZERO || std::time::Instant::now() > deadline {
                break c;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let tree = tree_cpu_time(me).expect("our tree");
        let own = cpu_time(me).expect("our own");
        let _ = child.kill();
        let _ = child.wait();
        assert!(child_cpu > Duration::ZERO, "the child used CPU");
        assert!(
            tree >= own + child_cpu,
            "tree {tree:?} own {own:?} child {child_cpu:?}"
        );
        assert_eq!(tree_cpu_time(u32::MAX), None, "no such process");
    }
}
