//! What dr-director checks on the host before it takes an interface: the host's kernel must
//! neither hold a VIP (it would answer the clients itself, with RSTs) nor route IPv4 on the
//! interface (it would forward what the director also forwards).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;

/// Every problem found, each saying what to change; empty when the host is fit.
pub fn problems(interface: &str, vips: &[IpAddr]) -> Vec<String> {
    let mut found = Vec::new();
    for &vip in vips {
        // Binding to an address succeeds only if the host holds it (ip_nonlocal_bind aside).
        if UdpSocket::bind(SocketAddr::new(vip, 0)).is_ok() {
            found.push(format!(
                "this host holds the VIP {vip}: remove it (ip addr del {vip}/… dev …); the \
                 director owns VIPs at layer 2 and the kernel must not answer for them"
            ));
        }
    }
    let forwarding = Path::new("/proc/sys/net/ipv4/conf").join(interface).join("forwarding");
    if std::fs::read_to_string(&forwarding).is_ok_and(|v| v.trim() == "1") {
        found.push(format!(
            "IPv4 forwarding is on for {interface}: turn it off with \
             sysctl -w net.ipv4.conf.{interface}.forwarding=0"
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::problems;

    #[test]
    fn a_vip_the_host_holds_is_refused_with_the_fix() {
        let held: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let found = problems("dr-no-such-if", &[held]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("ip addr del 127.0.0.1"), "{found:?}");
        // An address nobody here holds, on an interface without a forwarding setting.
        let free: std::net::IpAddr = "192.0.2.123".parse().unwrap();
        assert!(problems("dr-no-such-if", &[free]).is_empty());
    }

    #[test]
    fn forwarding_on_the_interface_is_refused_with_the_fix() {
        // Read the host's own setting for lo: the check must agree with it.
        let on = std::fs::read_to_string("/proc/sys/net/ipv4/conf/lo/forwarding")
            .is_ok_and(|v| v.trim() == "1");
        let found = problems("lo", &[]);
        assert_eq!(!found.is_empty(), on, "{found:?}");
        if on {
            assert!(found[0].contains("sysctl -w net.ipv4.conf.lo.forwarding=0"), "{found:?}");
        }
    }
}
