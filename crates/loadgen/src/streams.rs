//! The set of streams a load run writes: labels, tenant and format of each.

use crate::generator::{Format, Rng};

/// Applications the streams belong to (12, so 71 streams give ~6 pods each).
const APPS: [&str; 12] = [
    "checkout",
    "payments",
    "cart",
    "catalog",
    "search",
    "orders",
    "users",
    "inventory",
    "shipping",
    "gateway",
    "notifications",
    "recommendations",
];

/// Which format each stream logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatChoice {
    /// JSON, logfmt and plain text by application, a third each.
    Mixed,
    /// Every stream in one format.
    Only(Format),
}

impl FormatChoice {
    /// Parses `mixed`, `json`, `logfmt` or `text`.
    pub fn parse(name: &str) -> Result<FormatChoice, String> {
        if name == "mixed" {
            return Ok(FormatChoice::Mixed);
        }
        Format::parse(name)
            .map(FormatChoice::Only)
            .ok_or_else(|| format!("unknown format {name:?}: expected mixed, json, logfmt or text"))
    }
}

/// One stream of a load run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Tenant (`X-Scope-OrgID`) the stream is pushed as.
    pub tenant: String,
    /// Label set in Loki's text form, e.g. `{app="cart", job="loadgen", …}`.
    pub labels: String,
    /// Line format.
    pub format: Format,
    /// Application name (the `app` label, and `service` in the lines).
    pub app: &'static str,
    /// Pod name (the `pod` label, and `pod` in the lines).
    pub pod: String,
    /// Seed of the stream's generator.
    pub seed: u64,
}

/// Describes `streams` streams spread round-robin over `tenants` tenants
/// named `<tenant_prefix>-<n>`; labels `app`, `container`, `format`, `job`
/// (`loadgen`), `namespace` and `pod`. Deterministic from `seed`.
pub fn stream_specs(
    streams: usize,
    tenants: usize,
    tenant_prefix: &str,
    format: FormatChoice,
    seed: u64,
) -> Vec<StreamSpec> {
    let tenants = tenants.max(1);
    let mut rng = Rng::new(seed);
    let deployment_hashes: Vec<String> = APPS
        .iter()
        .map(|_| format!("{:09x}", rng.below(1 << 36)))
        .collect();
    (0..streams)
        .map(|index| {
            let app_index = index % APPS.len();
            let app = APPS[app_index];
            let stream_format = match format {
                FormatChoice::Mixed => Format::ALL[app_index % Format::ALL.len()],
                FormatChoice::Only(format) => format,
            };
            let pod = format!(
                "{app}-{}-{}",
                deployment_hashes[app_index],
                pod_suffix(&mut rng)
            );
            let namespace = if app_index < 9 { "shop" } else { "platform" };
            let labels = format!(
                r#"{{app="{app}", container="app", format="{}", job="loadgen", namespace="{namespace}", pod="{pod}"}}"#,
                stream_format.as_str()
            );
            StreamSpec {
                tenant: format!("{tenant_prefix}-{}", index % tenants),
                labels,
                format: stream_format,
                app,
                pod,
                seed: seed
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .wrapping_add(index as u64 + 1),
            }
        })
        .collect()
}

/// Five characters from Kubernetes' pod-name alphabet.
fn pod_suffix(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_labels_spread_over_tenants() {
        let specs = stream_specs(71, 3, "t", FormatChoice::Mixed, 1);
        assert_eq!(specs.len(), 71);
        let labels: std::collections::BTreeSet<&str> =
            specs.iter().map(|spec| spec.labels.as_str()).collect();
        assert_eq!(labels.len(), 71, "every stream has its own label set");
        for tenant in ["t-0", "t-1", "t-2"] {
            assert!(specs.iter().filter(|spec| spec.tenant == tenant).count() >= 23);
        }
        for format in Format::ALL {
            assert!(specs.iter().filter(|spec| spec.format == format).count() >= 20);
        }
        assert_eq!(specs, stream_specs(71, 3, "t", FormatChoice::Mixed, 1));
        assert!(specs[0].labels.starts_with(r#"{app="checkout", container="app", format="json", job="loadgen", namespace="shop", pod="checkout-"#));
    }

    #[test]
    fn format_choice_parses() {
        assert_eq!(FormatChoice::parse("mixed"), Ok(FormatChoice::Mixed));
        assert_eq!(
            FormatChoice::parse("logfmt"),
            Ok(FormatChoice::Only(Format::Logfmt))
        );
        assert!(FormatChoice::parse("yaml").unwrap_err().contains("yaml"));
    }
}
