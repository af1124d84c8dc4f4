//! Sizes, rates, durations and dates as people write and read them: `4M`, `500K`, `1.2 MiB/s`,
//! `1h02m`, `2023-11-14 22:13:20 UTC`. Binary units throughout (K = 1024), as BitTorrent clients
//! conventionally show them. The one formatter of each for swarmctl (every command prints a size
//! the same way), `swarmd download`'s progress and swarmd's systemd status line.

/// `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// `1536` → `1.5 KiB/s`.
pub fn rate(bytes_per_sec: u64) -> String {
    format!("{}/s", bytes(bytes_per_sec))
}

/// A limit for display: `None` → `unlimited`.
pub fn limit(bytes_per_sec: Option<u64>) -> String {
    bytes_per_sec
        .map(rate)
        .unwrap_or_else(|| "unlimited".to_owned())
}

/// `3725` → `1h02m`.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Unix seconds as `YYYY-MM-DD hh:mm:ss UTC` (proleptic Gregorian; no time-zone database needed).
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil: the epoch shifted to 0000-03-01 so that leap days fall at
    // the end of each 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses a rate in bytes per second: `4M`, `500K`, `1.5MiB`, `2048`, `0` or `unlimited`
/// (`0` and `unlimited` both mean no limit and give `0`, the control protocol's "unlimited").
/// A trailing `/s` and a `B` are allowed (`4MB/s`); units are binary.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited")
        || t.eq_ignore_ascii_case("none")
        || t.eq_ignore_ascii_case("off")
    {
        return Ok(0);
    }
    let t = t.strip_suffix("/s").unwrap_or(t).trim_end();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a rate (try 4M, 500K, 0 or unlimited)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let factor: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(format!("{text:?} has an unknown unit (use K, M or G)")),
    };
    let value = number * factor as f64;
    if !value.is_finite() || value >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(value.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(50 << 20), "50 MiB");
        assert_eq!(rate(4 << 20), "4.0 MiB/s");
        assert_eq!(limit(None), "unlimited");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3725), "1h02m");
        assert_eq!(duration(90061), "1d01h");
        assert_eq!(bytes(u64::MAX), "16384 PiB");
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("4M"), Ok(4 << 20));
        assert_eq!(parse_rate("500K"), Ok(500 << 10));
        assert_eq!(parse_rate("500k"), Ok(500 << 10));
        assert_eq!(parse_rate("1.5MiB"), Ok(3 << 19));
        assert_eq!(parse_rate("4MB/s"), Ok(4 << 20));
        assert_eq!(parse_rate("2048"), Ok(2048));
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_rate("unlimited"), Ok(0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("4T").is_err());
        assert!(parse_rate("").is_err());
        assert!(parse_rate("-1").is_err());
    }
}
