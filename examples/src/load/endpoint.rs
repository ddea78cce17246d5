//! Addresses as ipvsadm takes them after `-t`, `-u` and `-r` (`parse_service` in ipvsadm.c):
//! `a.b.c.d[:port]`, `[v6]:port` or a bare IPv6 address, the port a number or a service
//! name (`:http`, as `ipvsadm-save` without `-n` writes it). Host names are refused: the
//! director does not resolve names.

use std::net::IpAddr;

/// Service names and their ports, as netbase's `/etc/services` gives them (the names
/// `getservbyport` returns there, which `ipvsadm -S` writes without `-n`, and the usual
/// aliases), for the services people balance. A name is the same port for TCP and UDP.
const SERVICES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("tftp", 69),
    ("http", 80),
    ("www", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("nntp", 119),
    ("ntp", 123),
    ("netbios-ssn", 139),
    ("imap2", 143),
    ("imap", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("submissions", 465),
    ("syslog", 514),
    ("submission", 587),
    ("ldaps", 636),
    ("rsync", 873),
    ("imaps", 993),
    ("pop3s", 995),
    ("openvpn", 1194),
    ("ms-sql-s", 1433),
    ("radius", 1812),
    ("nfs", 2049),
    ("mysql", 3306),
    ("sip", 5060),
    ("postgresql", 5432),
    ("redis", 6379),
    ("http-alt", 8080),
    ("webcache", 8080),
];

/// The port of a service name (`http` is 80), if it is one of the names above.
pub fn port_by_name(name: &str) -> Option<u16> {
    SERVICES.iter().find(|(n, _)| *n == name).map(|&(_, port)| port)
}

/// An address and its port, if it has one.
///
/// # Errors
///
/// A message naming the text and what is accepted: a host name (not resolved), an address
/// that does not parse, a port that is neither a number up to 65535 nor a known name.
pub fn parse_endpoint(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad = || format!("{text:?} is not an address: give a.b.c.d[:port] or [v6]:port");
    if let Ok(v6) = text.parse::<std::net::Ipv6Addr>() {
        return Ok((IpAddr::V6(v6), None));
    }
    let (addr, port) = if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
        if !after.is_empty() && !after.starts_with(':') {
            return Err(bad());
        }
        (addr, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((addr, port)) => (addr, Some(port)),
            None => (text, None),
        }
    };
    let addr: IpAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(_) if is_host_name(addr) => {
            return Err(format!(
                "{text:?}: {addr} is a host name, and dr does not resolve names: write its \
                 address (ipvsadm-save -n writes addresses)"
            ));
        }
        Err(_) => return Err(bad()),
    };
    let port = port.map(|p| parse_port(text, p)).transpose()?;
    Ok((addr, port))
}

fn parse_port(text: &str, port: &str) -> Result<u16, String> {
    if port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty() {
        return port
            .parse()
            .map_err(|_| format!("{text:?}: port {port} is out of range: give 0 to 65535"));
    }
    port_by_name(port).ok_or_else(|| {
        format!(
            "{text:?}: {port:?} is not a port number or a service name dr knows: give the number"
        )
    })
}

/// Letters, digits, `-` and `.`, with a letter somewhere: what a host name looks like.
fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && text.bytes().any(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (String, Option<u16>) {
        let (addr, port) = parse_endpoint(text).unwrap();
        (addr.to_string(), port)
    }

    #[test]
    fn addresses_ports_and_service_names() {
        assert_eq!(ok("10.0.0.1:80"), ("10.0.0.1".into(), Some(80)));
        assert_eq!(ok("10.0.0.1"), ("10.0.0.1".into(), None));
        assert_eq!(ok("10.0.0.1:0"), ("10.0.0.1".into(), Some(0)));
        assert_eq!(ok("[2001:db8::1]:443"), ("2001:db8::1".into(), Some(443)));
        assert_eq!(ok("[2001:db8::1]"), ("2001:db8::1".into(), None));
        assert_eq!(ok("2001:db8::1"), ("2001:db8::1".into(), None), "a bare IPv6 address");
        // The ports of these names in the IANA registry.
        for (name, port) in
            [("http", 80), ("https", 443), ("domain", 53), ("telnet", 23), ("mysql", 3306)]
        {
            assert_eq!(ok(&format!("10.0.0.1:{name}")), ("10.0.0.1".into(), Some(port)));
        }
        assert_eq!(ok("[2001:db8::1]:http"), ("2001:db8::1".into(), Some(80)));
    }

    #[test]
    fn what_is_refused_says_why() {
        let err = |text: &str| parse_endpoint(text).unwrap_err();
        assert!(err("www.example.com:80").contains("www.example.com is a host name"));
        assert!(err("lvs:80").contains("lvs is a host name"));
        assert!(err("10.0.0.1:70000").contains("port 70000 is out of range"));
        assert!(err("10.0.0.1:gopherx").contains("\"gopherx\" is not a port number"));
        assert!(err("10.0.0.1:").contains("not a port number"));
        assert!(err("10.0.0.300:80").contains("is not an address"));
        assert!(err("[2001:db8::1").contains("is not an address"));
        assert!(err("[2001:db8::1]80").contains("is not an address"));
    }
}
