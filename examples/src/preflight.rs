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
