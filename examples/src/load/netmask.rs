//! Persistence granularity as users write it: an IPv4 netmask (`255.255.255.0`) or a prefix
//! length (`24`, and for IPv6 always a length, as ipvsadm takes it).

/// The prefix length a netmask or length gives, for a service on an IPv4 (`ipv4`) or IPv6
/// VIP.
///
/// # Errors
///
/// A message saying what is accepted, for a non-contiguous mask, a mask on an IPv6 service
/// or a length beyond the address.
pub fn parse_netmask(text: &str, ipv4: bool) -> Result<u8, String> {
    let width = if ipv4 { 32 } else { 128 };
    if let Ok(len) = text.parse::<u8>()
        && len <= width
    {
        return Ok(len);
    }
    match text.parse::<std::net::Ipv4Addr>() {
        Ok(mask) if ipv4 => {
            let bits = u32::from(mask);
            let len = bits.leading_ones();
            if bits.checked_shl(len).unwrap_or(0) != 0 {
                return Err(format!(
                    "netmask {text} is not contiguous: give ones then zeros, e.g. 255.255.255.0"
                ));
            }
            Ok(len as u8)
        }
        Ok(_) => Err(format!("netmask {text}: an IPv6 service takes a prefix length, 1 to 128")),
        Err(_) => Err(format!(
            "netmask {text:?}: give a mask like 255.255.255.0 or a prefix length up to {width}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_netmask;

    #[test]
    fn masks_and_lengths() {
        assert_eq!(parse_netmask("255.255.255.0", true), Ok(24));
        assert_eq!(parse_netmask("255.255.255.255", true), Ok(32));
        assert_eq!(parse_netmask("0.0.0.0", true), Ok(0));
        assert_eq!(parse_netmask("24", true), Ok(24));
        assert_eq!(parse_netmask("64", false), Ok(64));
        assert!(parse_netmask("255.0.255.0", true).unwrap_err().contains("contiguous"));
        assert!(parse_netmask("33", true).is_err());
        assert!(parse_netmask("255.255.0.0", false).unwrap_err().contains("prefix length"));
        assert!(parse_netmask("129", false).is_err());
        assert!(parse_netmask("wide", true).is_err());
    }
}
