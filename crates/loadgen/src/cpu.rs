//! CPU time of a process from `/proc/<pid>/stat` (Linux), to report
//! CPU-seconds per million lines next to throughput.

/// Clock ticks per second of `utime`/`stime`: `USER_HZ`, 100 on every
/// Linux architecture's user-space ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds used so far by process `pid` (all its threads),
/// or by this process when `pid` is `None`. `None` when `/proc` cannot be
/// read (another OS, or the process is gone).
pub fn process_cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in seconds.
fn parse_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // after_name starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime() {
        let stat = "4242 (sluice worker) S 1 4242 4242 0 -1 4194560 2318 0 0 0 1234 566 0 0 20 0 9 0 123 0 0";
        assert_eq!(parse_stat(stat), Some(18.0));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_its_own_cpu_time() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(process_cpu_seconds(None).is_some());
        }
    }
}
