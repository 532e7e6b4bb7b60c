//! Byte sizes as Loki's config reads them (`flagext.ByteSize`): a plain
//! integer is bytes; a number with a unit (`B`, `KB`/`KiB`, `MB`/`MiB`,
//! `GB`/`GiB`, `TB`/`TiB`, `PB`/`PiB`) is in powers of 1024 either way, so
//! `3MB` is 3145728 bytes. Values print in Loki's form (`3MiB`, `0B`).

/// Units, largest first, in powers of 1024.
const UNITS: [(&str, u64); 6] = [
    ("P", 1 << 50),
    ("T", 1 << 40),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
    ("", 1),
];

/// Parses a byte size; the error says what is wrong.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    if number.is_empty() {
        return Err(format!("invalid byte size {text:?}: no number"));
    }
    let unit = unit.trim();
    let prefix = unit
        .strip_suffix("iB")
        .or_else(|| unit.strip_suffix("ib"))
        .or_else(|| unit.strip_suffix('B'))
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let multiplier = UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(prefix))
        .map(|(_, multiplier)| *multiplier)
        .ok_or_else(|| format!("invalid byte size {text:?}: unknown unit {unit:?}"))?;
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(multiplier)
            .ok_or_else(|| format!("invalid byte size {text:?}: too large"));
    }
    let fraction: f64 = number
        .parse()
        .map_err(|_| format!("invalid byte size {text:?}"))?;
    let bytes = fraction * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("invalid byte size {text:?}: too large"));
    }
    Ok(bytes as u64)
}

/// Formats a byte size the way Loki prints one: the largest unit that
/// divides it exactly (`3MiB`, `1536KiB`, `100B`).
pub fn format_byte_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0B".to_string();
    }
    for (prefix, multiplier) in UNITS {
        if multiplier > 1 && bytes % multiplier == 0 {
            return format!("{}{prefix}iB", bytes / multiplier);
        }
    }
    format!("{bytes}B")
}

/// Serde for byte-size fields kept as plain integers in Rust: reads an
/// integer or a string with a unit, writes Loki's form.
pub mod serde_byte_size {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{format_byte_size, parse_byte_size};

    /// Writes the size as `3MiB`.
    pub fn serialize<S: Serializer, T: Copy + Into<u64>>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_byte_size((*value).into()))
    }

    /// Reads `3145728`, `"3MB"` or `"3MiB"`.
    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        let bytes = match Raw::deserialize(deserializer)? {
            Raw::Number(bytes) => bytes,
            Raw::Text(text) => parse_byte_size(&text).map_err(serde::de::Error::custom)?,
        };
        T::try_from(bytes).map_err(|_| serde::de::Error::custom(format!("{bytes} is too large")))
    }
}

/// [`serde_byte_size`] for `usize` fields.
pub mod serde_byte_size_usize {
    use serde::{Deserializer, Serializer};

    /// Writes the size as `3MiB`.
    pub fn serialize<S: Serializer>(value: &usize, serializer: S) -> Result<S::Ok, S::Error> {
        super::serde_byte_size::serialize(&(*value as u64), serializer)
    }

    /// Reads `3145728`, `"3MB"` or `"3MiB"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
        super::serde_byte_size::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lokis_forms() {
        assert_eq!(parse_byte_size("0"), Ok(0));
        assert_eq!(parse_byte_size("1024"), Ok(1024));
        assert_eq!(parse_byte_size("100B"), Ok(100));
        assert_eq!(parse_byte_size("3MB"), Ok(3 << 20));
        assert_eq!(parse_byte_size("3MiB"), Ok(3 << 20));
        assert_eq!(parse_byte_size("256KB"), Ok(256 << 10));
        assert_eq!(parse_byte_size("1.5GB"), Ok(3 << 29));
        assert_eq!(parse_byte_size(" 15mb "), Ok(15 << 20));
        assert!(parse_byte_size("MB").is_err());
        assert!(parse_byte_size("3XB").is_err());
        assert!(parse_byte_size("99999999999PB").is_err());
    }

    #[test]
    fn formats_like_loki() {
        assert_eq!(format_byte_size(0), "0B");
        assert_eq!(format_byte_size(3 << 20), "3MiB");
        assert_eq!(format_byte_size(1536 << 10), "1536KiB");
        assert_eq!(format_byte_size(100), "100B");
        for bytes in [0, 1, 1000, 1 << 10, 15 << 20, (1 << 40) + 1] {
            assert_eq!(parse_byte_size(&format_byte_size(bytes)), Ok(bytes));
        }
    }
}
